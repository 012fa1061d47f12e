"""The refine requests: instructions from a template file (`refine.prompts`), markers from `middo.refine.contract`.

A prompt of several turns is shown as `role: content` lines; the child is one user turn (after the parent's system
message, if any) and one assistant turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from middo.data.schema import prompt_messages, response_text
from middo.errors import ConfigError
from middo.refine.contract import (
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
)
from middo.templates import load_template, require_texts

OPERATIONS = (*PROMPT_OPS, RESPOND)


@dataclass(frozen=True)
class RefinePrompts:
    """The system message of each operation, rendered once from the template (markers filled in)."""

    systems: dict[str, str]
    source: str
    """Where the template came from (the packaged file or the user's path)."""

    def system_message(self, op: str) -> dict:
        """The system turn of an operation: `Operation: <op>`, the instruction, the final-marker rule."""
        return {"role": "system", "content": self.systems[op]}

    def rewrite(self, op: str, messages: list[dict], earlier: tuple[str, ...] = ()) -> list[dict]:
        """A simplify or improve request: the sample's prompt and original response, then earlier attempts' notes."""
        response = f"{RESPONSE_OPEN}\n{response_text(messages)}\n{RESPONSE_CLOSE}"
        parts = [f"{SAMPLE_OPEN}\n{prompt_text(messages)}\n{response}\n{SAMPLE_CLOSE}", *earlier_parts(earlier)]
        return [self.system_message(op), {"role": "user", "content": "\n".join(parts)}]

    def synthesize(self, messages: list[dict], hints: list[str], variant: int, variants: int,
                   earlier: tuple[str, ...] = ()) -> list[dict]:
        """A synthesize request: the sparse sample's prompt, one hint per neighbour, which variant this is, and notes
        on earlier attempts."""
        parts = [f"{SAMPLE_OPEN}\n{prompt_text(messages)}\n{SAMPLE_CLOSE}"]
        parts += [f"{HINT_OPEN}\n{hint}\n{HINT_CLOSE}" for hint in hints]
        if variants > 1:  # distinct requests, so the request cache does not return one task n times
            parts.append(f"Write variant {variant + 1} of {variants}: make it differ from the other variants.")
        parts += earlier_parts(earlier)
        return [self.system_message("synthesize"), {"role": "user", "content": "\n".join(parts)}]

    def respond(self, new_prompt: str) -> list[dict]:
        """A respond request: the new prompt to answer."""
        content = f"{PROMPT_OPEN}\n{new_prompt}\n{PROMPT_CLOSE}"
        return [self.system_message(RESPOND), {"role": "user", "content": content}]


def load_refine_prompts(path: str | Path | None = None) -> RefinePrompts:
    """The refine prompts of the template at `path` (`refine.prompts`), or the packaged ones when None."""
    template, source = load_template(path, "refine.yaml", "refine.prompts")
    texts = require_texts(template, (*OPERATIONS, "final_rule"), source)
    what = template.get("what")
    if not isinstance(what, dict) or any(not isinstance(what.get(op), str) for op in OPERATIONS):
        raise ConfigError(f"{source}: `what` must name, for each of {', '.join(OPERATIONS)}, what the reply holds")
    systems = {op: _render(source, op, texts[op], texts["final_rule"], what[op]) for op in OPERATIONS}
    return RefinePrompts(systems, source)


def _render(source: str, op: str, instruction: str, final_rule: str, what: str) -> str:
    try:
        text = instruction.format(**MARKERS) + "\n" + final_rule.format(**MARKERS, what=what)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"{source}: the {op!r} instruction or final_rule has a bad placeholder ({exc}); use only "
                          f"{', '.join('{' + name + '}' for name in MARKERS)} and {{what}}, and {{{{ }}}} for braces"
                          ) from exc
    if FINAL_OPEN not in text or FINAL_CLOSE not in text:
        raise ConfigError(f"{source}: the {op!r} request never names {FINAL_OPEN} and {FINAL_CLOSE}; keep "
                          "{final_open} and {final_close} in final_rule, or no reply can be read")
    return f"{OPERATION_PREFIX}{op}\n{text}"


def prompt_text(messages: list[dict]) -> str:
    """The prompt of a sample as text: the user turn alone, or `role: content` lines for several turns."""
    turns = [m for m in prompt_messages(messages) if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n".join(f"{m['role']}: {m['content']}" for m in turns)


def earlier_parts(earlier: tuple[str, ...]) -> list[str]:
    """One tagged note per earlier attempt, then the request to write something different."""
    if not earlier:
        return []
    notes = [f"{EARLIER_OPEN}\n{note}\n{EARLIER_CLOSE}" for note in earlier]
    return [*notes, "Those earlier attempts are not to be repeated: write a different task."]


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, marked with `...` when cut."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
