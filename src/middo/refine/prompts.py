"""The refine requests: instructions from a template file (`refine.prompts`), markers from `middo.refine.contract`.

The sample shown is its final user turn; a sample of several turns shows its earlier turns before it as context
(`<context>`, one `role: content` line each, capped as `middo.refine.context` says), and the system message then
adds the template's `context` entry for the operation. Every text from the data goes through `contract.fence`, so it
can hold no marker. Simplify and improve requests show the parent's response unless `refine.show_response` is off;
new prompts are answered as `refine.answer_style` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from middo.data.schema import prompt_messages, response_text
from middo.errors import ConfigError
from middo.refine.context import Context, split_conversation
from middo.refine.contract import (
    CONTEXT_CLOSE,
    CONTEXT_OPEN,
    EARLIER_CLOSE,
    EARLIER_OPEN,
    FINAL_CLOSE,
    FINAL_OPEN,
    HINT_CLOSE,
    HINT_OPEN,
    MARKERS,
    OPERATION_PREFIX,
    PROMPT_CLOSE,
    PROMPT_OPEN,
    PROMPT_OPS,
    RESPOND,
    RESPONSE_CLOSE,
    RESPONSE_OPEN,
    SAMPLE_CLOSE,
    SAMPLE_OPEN,
    fence,
)
from middo.templates import load_template, require_texts

OPERATIONS = (*PROMPT_OPS, RESPOND)
OPTIONAL = ("respond_comprehensive", "with_response", "json_rule", "plain_rule")
"""Template entries a user's copy may leave out (the packaged texts are used)."""
RESPOND_KEYS = {"concise": RESPOND, "comprehensive": "respond_comprehensive"}
"""`refine.answer_style` -> the template entry of the respond instruction."""


@dataclass(frozen=True)
class RefinePrompts:
    """The system message of each operation, rendered once from the template (markers filled in)."""

    systems: dict[str, str]
    in_context: dict[str, str]
    """The system message of each operation for a request that shows earlier turns (`context` entry added)."""
    source: str
    """Where the template came from (the packaged file or the user's path)."""
    show_response: bool = True
    """Simplify and improve requests show the parent's response (`refine.show_response`)."""
    reply_format: str = "markers"
    """`markers` or `json` (`refine.reply_format`, resolved): how the rules ask the teacher to reply."""

    def system_message(self, op: str, context: bool = False) -> dict:
        """The system turn of an operation: `Operation: <op>`, the instruction (and, when the request shows earlier
        turns, the `context` entry), the final-marker rule."""
        return {"role": "system", "content": (self.in_context if context else self.systems)[op]}

    def rewrite(self, op: str, messages: list[dict], earlier: tuple[str, ...] = (),
                context: Context | None = None) -> list[dict]:
        """A simplify or improve request: the earlier turns (`context`), the sample's final prompt (and original
        response when shown), then earlier attempts' notes."""
        shown = [fence(final_text(messages))]
        if self.show_response:
            shown.append(f"{RESPONSE_OPEN}\n{fence(response_text(messages))}\n{RESPONSE_CLOSE}")
        parts = [*context_parts(context), f"{SAMPLE_OPEN}\n" + "\n".join(shown) + f"\n{SAMPLE_CLOSE}",
                 *earlier_parts(earlier)]
        return self._request(op, context, parts)

    def synthesize(self, messages: list[dict], hints: list[str], variant: int, variants: int,
                   earlier: tuple[str, ...] = (), context: Context | None = None) -> list[dict]:
        """A synthesize request: the earlier turns (`context`), the sparse sample's final prompt, one hint per
        neighbour, which variant this is, and notes on earlier attempts."""
        parts = [*context_parts(context), f"{SAMPLE_OPEN}\n{fence(final_text(messages))}\n{SAMPLE_CLOSE}"]
        parts += [f"{HINT_OPEN}\n{fence(hint)}\n{HINT_CLOSE}" for hint in hints]
        if variants > 1:  # distinct requests, so the request cache does not return one task n times
            parts.append(f"Write variant {variant + 1} of {variants}: make it differ from the other variants.")
        parts += earlier_parts(earlier)
        return self._request("synthesize", context, parts)

    def respond(self, new_prompt: str, context: Context | None = None) -> list[dict]:
        """A respond request: the conversation it continues (`context`), then the new prompt to answer."""
        parts = [*context_parts(context), f"{PROMPT_OPEN}\n{fence(new_prompt)}\n{PROMPT_CLOSE}"]
        return self._request(RESPOND, context, parts)

    def _request(self, op: str, context: Context | None, parts: list[str]) -> list[dict]:
        shows_context = context is not None and context.present
        return [self.system_message(op, shows_context), {"role": "user", "content": "\n".join(parts)}]


def load_refine_prompts(path: str | Path | None = None, show_response: bool = True,
                        answer_style: str = "concise", reply_format: str = "markers") -> RefinePrompts:
    """The refine prompts of the template at `path` (`refine.prompts`), or the packaged ones when None, for
    `refine.show_response`, `refine.answer_style` and the resolved `refine.reply_format` (`markers` or `json`)."""
    template, source = load_template(path, "refine.yaml", "refine.prompts")
    texts = require_texts(template, (*OPERATIONS, "final_rule"), source)
    texts |= {key: template[key].strip() if isinstance(template.get(key), str) and template[key].strip()
              else _packaged_text(key) for key in OPTIONAL}
    what = template.get("what")
    if not isinstance(what, dict) or any(not isinstance(what.get(op), str) for op in OPERATIONS):
        raise ConfigError(f"{source}: `what` must name, for each of {', '.join(OPERATIONS)}, what the reply holds")
    context = template["context"] if "context" in template else _packaged_text("context")
    if not isinstance(context, dict) or any(not isinstance(context.get(op), str) for op in OPERATIONS):
        raise ConfigError(f"{source}: `context` must give, for each of {', '.join(OPERATIONS)}, the sentence added "
                          "when a request shows earlier turns of a conversation (or leave `context` out)")
    instructions = {op: texts[op] for op in OPERATIONS} | {RESPOND: texts[RESPOND_KEYS[answer_style]]}
    if show_response:
        instructions |= {op: f"{texts[op]} {texts['with_response']}" for op in ("simplify", "improve")}
    rules = {op: texts["final_rule"] for op in OPERATIONS}
    if reply_format == "json":
        rules = {op: texts["plain_rule" if op == RESPOND else "json_rule"] for op in OPERATIONS}
    markers = reply_format == "markers"
    systems = {op: _render(source, op, instructions[op], rules[op], what[op], markers) for op in OPERATIONS}
    in_context = {op: _render(source, op, f"{instructions[op]} {context[op].strip()}", rules[op], what[op], markers)
                  for op in OPERATIONS}
    return RefinePrompts(systems, in_context, source, show_response, reply_format)


@cache
def _packaged_text(key: str) -> str | dict[str, str]:
    value = load_template(None, "refine.yaml", "refine.prompts")[0][key]
    return value.strip() if isinstance(value, str) else value


def _render(source: str, op: str, instruction: str, final_rule: str, what: str, markers: bool = True) -> str:
    try:
        text = instruction.format(**MARKERS) + "\n" + final_rule.format(**MARKERS, what=what)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{source}: the {op!r} instruction or final_rule has a bad placeholder ({exc}); use only "
                          f"{', '.join('{' + name + '}' for name in MARKERS)} and {{what}}, and {{{{ }}}} for braces"
                          ) from exc
    if markers and (FINAL_OPEN not in text or FINAL_CLOSE not in text):
        raise ConfigError(f"{source}: the {op!r} request never names {FINAL_OPEN} and {FINAL_CLOSE}; keep "
                          "{final_open} and {final_close} in final_rule, or no reply can be read")
    return f"{OPERATION_PREFIX}{op}\n{text}"


def prompt_text(messages: list[dict]) -> str:
    """The prompt of a sample as text: the user turn alone, or `role: content` lines for several turns."""
    return turns_text([m for m in prompt_messages(messages) if m["role"] != "system"])


def final_text(messages: list[dict]) -> str:
    """The final prompt of a sample as text: its last user turn (`middo.refine.context.split_conversation`)."""
    return turns_text([m for m in split_conversation(messages).final if m["role"] != "system"])


def turns_text(turns: list[dict]) -> str:
    """One turn's content alone, or `role: content` lines for several turns."""
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in turns)


def context_parts(context: Context | None) -> list[str]:
    """The earlier turns as one fenced `<context>` block, opened by a count of the turns left out; none without
    earlier turns."""
    if context is None or not context.present:
        return []
    lines = [f"(older turns left out: {context.dropped})"] if context.dropped else []
    lines += [f"{m['role']}: {fence(m['content'])}" for m in context.shown]
    return [f"{CONTEXT_OPEN}\n" + "\n".join(lines) + f"\n{CONTEXT_CLOSE}"]


def earlier_parts(earlier: tuple[str, ...]) -> list[str]:
    """One tagged note per earlier attempt, then the request to write something different."""
    if not earlier:
        return []
    notes = [f"{EARLIER_OPEN}\n{fence(note)}\n{EARLIER_CLOSE}" for note in earlier]
    return [*notes, "Those earlier attempts are not to be repeated: write a different task."]


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marked with `...` when cut; a limit of 0 keeps it whole."""
    return text if limit == 0 or len(text) <= limit else text[: limit - 3].rstrip() + "..."
