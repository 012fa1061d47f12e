"""The refine request contract: the fixed markers every refine request carries and every teacher reply must use.

The wording of the instructions is a template (`middo.refine.prompts`, overridable by `refine.prompts`); these
markers are not, so any parser of the requests (a teacher of one's own, the demo's simulated teacher) reads them
from here:

- The system message's first line is exactly `Operation: <op>`, <op> one of `simplify`, `improve`, `synthesize`
  (these write a new prompt) or `respond` (this writes the response to a new prompt).
- The sample being worked on is in the user message between `SAMPLE_OPEN` and `SAMPLE_CLOSE`: its prompt text and,
  for simplify and improve, its original response between `RESPONSE_OPEN` and `RESPONSE_CLOSE` inside the sample
  (absent under `refine.show_response: false`).
- A synthesize request carries one hint per neighbour, each between `HINT_OPEN` and `HINT_CLOSE`, after the sample.
- A respond request carries the new prompt between `PROMPT_OPEN` and `PROMPT_CLOSE`.
- A sample of several turns is worked on in its final exchange: the sample holds its last user turn (and response),
  and its earlier turns come before it between `CONTEXT_OPEN` and `CONTEXT_CLOSE`, one `role: content` line each
  (the newest that fit `refine.context_max_tokens`, see `middo.refine.context`). So does the respond request of a
  simplify or improve child, which continues the conversation; a synthesize child starts a new one.
- A sample that an earlier round already worked on carries, after the sample (and hints), one note per earlier
  attempt of the same operation between `EARLIER_OPEN` and `EARLIER_CLOSE`.
- The reply puts its final content between `FINAL_OPEN` and `FINAL_CLOSE` (see `middo.refine.parse`); under
  `refine.reply_format: json` a new prompt comes as the JSON object of `REPLY_SCHEMA` instead (requested as the
  `response_format` `JSON_FORMAT`) and a response is the whole assistant message.
- Text from the data (a sample, an earlier turn, a hint, an earlier note, a new prompt) never holds a marker:
  `fence` writes any marker-shaped tag in it (`</sample>`, `< FINAL >`, ...) with `&lt;` and `&gt;`, so the only
  markers in a request are the contract's own, and a teacher that echoes the data cannot forge a `<final>` block.
"""

from __future__ import annotations

import re

from middo.data.schema import REFINE_OPS

OPERATION_PREFIX = "Operation: "
SAMPLE_OPEN, SAMPLE_CLOSE = "<sample>", "</sample>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<response>", "</response>"
HINT_OPEN, HINT_CLOSE = "<hint>", "</hint>"
PROMPT_OPEN, PROMPT_CLOSE = "<prompt>", "</prompt>"
EARLIER_OPEN, EARLIER_CLOSE = "<earlier>", "</earlier>"
CONTEXT_OPEN, CONTEXT_CLOSE = "<context>", "</context>"
FINAL_OPEN, FINAL_CLOSE = "<final>", "</final>"
PROMPT_OPS = REFINE_OPS
"""Operations whose first request writes a new prompt."""
RESPOND = "respond"
"""The operation of the second request: the response to a new prompt."""
MARKERS = {
    "sample_open": SAMPLE_OPEN, "sample_close": SAMPLE_CLOSE, "response_open": RESPONSE_OPEN,
    "response_close": RESPONSE_CLOSE, "hint_open": HINT_OPEN, "hint_close": HINT_CLOSE,
    "prompt_open": PROMPT_OPEN, "prompt_close": PROMPT_CLOSE, "earlier_open": EARLIER_OPEN,
    "earlier_close": EARLIER_CLOSE, "context_open": CONTEXT_OPEN, "context_close": CONTEXT_CLOSE,
    "final_open": FINAL_OPEN, "final_close": FINAL_CLOSE,
}
"""The placeholders a prompt template may use, e.g. `{sample_open}`."""


def operation_of(system: str) -> str | None:
    """The operation named on the first line of a refine request's system message, or None."""
    first_line = system.splitlines()[0] if system else ""
    return first_line[len(OPERATION_PREFIX):].strip() if first_line.startswith(OPERATION_PREFIX) else None

TAG_NAMES = ("sample", "response", "hint", "prompt", "earlier", "context", "final")
_MARKER_SHAPED = re.compile(r"<(\s*/?\s*(?:" + "|".join(TAG_NAMES) + r")\s*)>", re.IGNORECASE)


def fence(text: str) -> str:
    """`text` with every marker-shaped tag (any case, any spacing) written as `&lt;...&gt;`: data cannot speak the
    contract's markers."""
    return _MARKER_SHAPED.sub(r"&lt;\1&gt;", text)


REPLY_FIELD = "text"
REPLY_SCHEMA = {"type": "object", "properties": {REPLY_FIELD: {"type": "string"}}, "required": [REPLY_FIELD],
                "additionalProperties": False}
"""The JSON object a new prompt comes in under `refine.reply_format: json`."""
JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "refine_reply", "strict": True, "schema": REPLY_SCHEMA}}
"""The OpenAI `response_format` of a prompt-phase request under `refine.reply_format: json`."""
JSON_BACKENDS = ("openai", "local")
"""Teacher backends whose replies `refine.reply_format: auto` asks for as JSON."""


def resolve_reply_format(reply_format: str, backend: str) -> str:
    """`json` or `markers`: `auto` is `json` for the backends of `JSON_BACKENDS`, `markers` otherwise."""
    if reply_format != "auto":
        return reply_format
    return "json" if backend in JSON_BACKENDS else "markers"
