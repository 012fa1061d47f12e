"""The turns of a multi-turn sample in refine: what the teacher is shown of the earlier ones, what a child keeps.

A sample is `[system...] earlier turns... final user turn, response`. Refine rewrites the final exchange only. A
simplify or improve child continues the parent's conversation: its system and earlier turns are the parent's,
verbatim, then the new user turn and its response. A synthesize child is a new task written around a sparse sample
and starts a new conversation (the parent's system turns, the new user turn, its response): with the parent's
earlier turns it would repeat them in the data beside the parent, which stays, and its prompt embedding would sit on
the parent's. The teacher sees the earlier turns as context, the newest that fit in `refine.context_max_tokens`
(estimated tokens, `TOKEN_ESTIMATE`: no tokenizer of the teacher is at hand), oldest dropped first, whole turns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from middo.data.schema import prompt_messages
from middo.teacher.limits import CHARS_PER_TOKEN, MESSAGE_OVERHEAD, TOKEN_ESTIMATE

CONTINUING_OPS = ("simplify", "improve")
"""Operations whose child continues the parent's conversation (keeps its earlier turns)."""
CONTEXT_TOKENS = TOKEN_ESTIMATE
"""How the turns shown as context are counted against `refine.context_max_tokens`."""


@dataclass(frozen=True)
class Conversation:
    """A sample's prompt in three parts (the response, its last assistant turn, is not among them)."""

    system: list[dict]
    """The leading system turns."""
    earlier: list[dict]
    """The turns between the system turns and the final user turn."""
    final: list[dict]
    """The final user turn (and any turn between it and the response)."""


@dataclass(frozen=True)
class Context:
    """The earlier turns shown to the teacher, and how many older ones were left out to fit the cap."""

    shown: tuple[dict, ...]
    dropped: int

    @property
    def present(self) -> bool:
        """The sample has earlier turns (shown or not)."""
        return bool(self.shown) or self.dropped > 0


def split_conversation(messages: list[dict]) -> Conversation:
    """The leading system turns, the earlier turns and the final user turn of a sample's prompt."""
    prompt = prompt_messages(messages)
    lead = 0
    while lead < len(prompt) and prompt[lead]["role"] == "system":
        lead += 1
    users = [i for i in range(lead, len(prompt)) if prompt[i]["role"] == "user"]
    start = users[-1] if users else lead
    return Conversation(prompt[:lead], prompt[lead:start], prompt[start:])


def turn_tokens(turn: dict) -> int:
    """Estimated tokens of one turn (`CONTEXT_TOKENS`)."""
    return math.ceil(len(turn["content"]) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD


def fit_context(messages: list[dict], max_tokens: int) -> Context:
    """The newest earlier turns of a sample whose estimated tokens sum to at most `max_tokens`; older ones are
    dropped, whole, from the oldest on (0 shows none)."""
    earlier = split_conversation(messages).earlier
    kept, used = [], 0
    for turn in reversed(earlier):
        used += turn_tokens(turn)
        if used > max_tokens:
            break
        kept.append(turn)
    return Context(tuple(reversed(kept)), len(earlier) - len(kept))


def child_messages(parent: list[dict], op: str, new_prompt: str, response: str) -> list[dict]:
    """The parent's leading system turns, its earlier turns when `op` continues the conversation
    (`CONTINUING_OPS`), then the new prompt and its response."""
    parts = split_conversation(parent)
    kept = [*parts.system, *(parts.earlier if op in CONTINUING_OPS else [])]
    return [*({"role": m["role"], "content": m["content"]} for m in kept), {"role": "user", "content": new_prompt},
            {"role": "assistant", "content": response}]
