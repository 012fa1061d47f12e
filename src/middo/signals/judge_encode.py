"""Tokenise the six rating prompts of a sample as a small tree: a shared prefix, a branch, six short suffixes.

The prefix is the longest common *token* prefix of the six full tokenisations (the instructions and the prompt
block). When the prompt questions see the prompt alone, the three response prompts share more than that (the
response block): that part is the branch, computed once and continued by the three response questions, while the
prompt questions continue from the prefix. prefix (+ branch) + suffix is exactly the tokenisation of each full
prompt, whatever the tokenizer. Samples too long for the context have their prompt and response texts cut (head
kept, marked `[...]`) and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from middo.data.schema import response_text
from middo.signals.judge_prompts import ASPECTS, JudgePrompts, load_judge_prompts, prompt_text

CUT_MARK = " [...]"


@dataclass(frozen=True)
class RatingInput:
    """Token ids of one sample's six rating prompts: the prompt of `ASPECTS[j]` is `prefix + suffixes[j]`, or
    `prefix + branch + suffixes[j]` when `after_branch[j]`."""

    id: str
    prefix: list[int]
    suffixes: list[list[int]]
    truncated: bool
    branch: list[int] = field(default_factory=list)
    after_branch: tuple[bool, ...] = (False,) * len(ASPECTS)

    def cost(self) -> int:
        """Tokens this sample puts through the model (the prefix and the branch once, each suffix once)."""
        return len(self.prefix) + len(self.branch) + sum(len(suffix) for suffix in self.suffixes)

    def prompt_ids(self, aspect_index: int) -> list[int]:
        """The whole token ids of one aspect's rating prompt."""
        branch = self.branch if self.after_branch[aspect_index] else []
        return self.prefix + branch + self.suffixes[aspect_index]


def _render(tokenizer: PreTrainedTokenizerBase, prompts: JudgePrompts, prompt: str, response: str) -> list[list[int]]:
    """Token ids of the six rating prompts of a sample (one batched tokenizer call)."""
    texts = [
        tokenizer.apply_chat_template(prompts.rating_messages(prompt, response, aspect), tokenize=False,
                                      add_generation_prompt=True)
        for aspect in ASPECTS
    ]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _common_prefix_length(rows: list[list[int]]) -> int:
    shortest = min(len(row) for row in rows)
    for index in range(shortest):
        if any(row[index] != rows[0][index] for row in rows[1:]):
            return index
    return shortest


def _cut(tokenizer: PreTrainedTokenizerBase, text: str, keep: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= keep else tokenizer.decode(ids[: max(keep, 0)]) + CUT_MARK


def _fit(tokenizer: PreTrainedTokenizerBase, prompts: JudgePrompts, prompt: str, response: str,
         limit: int) -> tuple[list[list[int]], bool]:
    """The six prompts' ids, prompt and response texts cut so that each has at most `limit` tokens."""
    rows = _render(tokenizer, prompts, prompt, response)
    longest = max(map(len, rows))
    if longest <= limit:
        return rows, False
    sizes = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in (prompt, response)]
    room = limit - (longest - sum(sizes)) - 8  # 8: slack for merges at the cut and the cut mark
    while True:
        half = room // 2
        # the shorter text keeps what it has if it fits in half; the longer gets the rest
        keep_prompt = sizes[0] if sizes[0] <= half else max(half, room - sizes[1])
        keep_response = max(room - keep_prompt, 0)
        rows = _render(tokenizer, prompts, _cut(tokenizer, prompt, keep_prompt),
                       _cut(tokenizer, response, keep_response))
        longest = max(map(len, rows))
        if longest <= limit or room <= 0:
            return rows, True
        room -= longest - limit


def encode_ratings(tokenizer: PreTrainedTokenizerBase, sample_id: str, messages: list[dict], limit: int,
                   share_prefix: bool = True, prompts: JudgePrompts | None = None) -> RatingInput:
    """The six rating prompts of a sample, tokenised with the chat template, each at most `limit` tokens.

    `prompts`: the rating prompts (`judge.prompts`); None takes the packaged ones. With `share_prefix=False` the
    prefix is a single token and each suffix is nearly the whole prompt (the six-separate-sequences baseline, kept
    for benchmarks).
    """
    prompts = prompts or load_judge_prompts()
    rows, truncated = _fit(tokenizer, prompts, prompt_text(messages), response_text(messages), limit)
    if not share_prefix:
        return RatingInput(sample_id, rows[0][:1], [row[1:] for row in rows], truncated)
    shared = min(_common_prefix_length(rows), min(len(row) for row in rows) - 1)  # each suffix keeps a token
    after = tuple(prompts.sees_response(aspect) for aspect in ASPECTS)
    branched = [row for row, sees in zip(rows, after, strict=True) if sees]
    if all(after) or not branched:
        return RatingInput(sample_id, rows[0][:shared], [row[shared:] for row in rows], truncated)
    split = min(_common_prefix_length(branched), min(len(row) for row in branched) - 1)
    suffixes = [row[split:] if sees else row[shared:] for row, sees in zip(rows, after, strict=True)]
    return RatingInput(sample_id, rows[0][:shared], suffixes, truncated, branched[0][shared:split], after)
