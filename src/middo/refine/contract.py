"""The refine request contract: the fixed markers every refine request carries and every teacher reply must use.

The wording of the instructions is a template (`middo.refine.prompts`, overridable by `refine.prompts`); these
markers are not, so any parser of the requests (a teacher of one's own, the demo's simulated teacher) reads them
from here:

- The system message's first line is exactly `Operation: <op>`, <op> one of `simplify`, `improve`, `synthesize`
  (these write a new prompt) or `respond` (this writes the response to a new prompt).
- The sample being worked on is in the user message between `SAMPLE_OPEN` and `SAMPLE_CLOSE`: its prompt text and,
  for simplify and improve, its original response between `RESPONSE_OPEN` and `RESPONSE_CLOSE` inside the sample.
- A synthesize request carries one hint per neighbour, each between `HINT_OPEN` and `HINT_CLOSE`, after the sample.
- A respond request carries the new prompt between `PROMPT_OPEN` and `PROMPT_CLOSE`.
- A sample that an earlier round already worked on carries, after the sample (and hints), one note per earlier
  attempt of the same operation between `EARLIER_OPEN` and `EARLIER_CLOSE`.
- The reply puts its final content between `FINAL_OPEN` and `FINAL_CLOSE` (see `middo.refine.parse`).
"""

from __future__ import annotations

from middo.data.schema import REFINE_OPS

OPERATION_PREFIX = "Operation: "
SAMPLE_OPEN, SAMPLE_CLOSE = "<sample>", "</sample>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<response>", "</response>"
HINT_OPEN, HINT_CLOSE = "<hint>", "</hint>"
PROMPT_OPEN, PROMPT_CLOSE = "<prompt>", "</prompt>"
EARLIER_OPEN, EARLIER_CLOSE = "<earlier>", "</earlier>"
FINAL_OPEN, FINAL_CLOSE = "<final>", "</final>"
PROMPT_OPS = REFINE_OPS
"""Operations whose first request writes a new prompt."""
RESPOND = "respond"
"""The operation of the second request: the response to a new prompt."""
MARKERS = {
    "sample_open": SAMPLE_OPEN, "sample_close": SAMPLE_CLOSE, "response_open": RESPONSE_OPEN,
    "response_close": RESPONSE_CLOSE, "hint_open": HINT_OPEN, "hint_close": HINT_CLOSE,
    "prompt_open": PROMPT_OPEN, "prompt_close": PROMPT_CLOSE, "earlier_open": EARLIER_OPEN,
    "earlier_close": EARLIER_CLOSE, "final_open": FINAL_OPEN, "final_close": FINAL_CLOSE,
}
"""The placeholders a prompt template may use, e.g. `{sample_open}`."""


def operation_of(system: str) -> str | None:
    """The operation named on the first line of a refine request's system message, or None."""
    first_line = system.splitlines()[0] if system else ""
    return first_line[len(OPERATION_PREFIX):].strip() if first_line.startswith(OPERATION_PREFIX) else None
