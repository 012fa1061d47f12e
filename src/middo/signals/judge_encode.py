"""Tokenise the six rating prompts of a sample as a token tree: each shared run of tokens is one segment.

The six prompts share the instructions and the prompt block; when the prompt questions see the prompt alone, the
three response prompts also share the response block, and each group shares the opening of its questions. The tree
holds each such run once (a segment continuing its parent segment), so the path from the root to the leaf of an
aspect is exactly the tokenisation of that aspect's full prompt, whatever the tokenizer. Samples too long for the
context have their prompt and response texts cut (head kept, marked `[...]`) and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from middo.data.schema import response_text
from middo.signals.judge_prompts import ASPECTS, JudgePrompts, load_judge_prompts, prompt_text

CUT_MARK = " [...]"


@dataclass(frozen=True)
class RatingInput:
    """Token ids of one sample's six rating prompts as a tree: `segments[k]` continues `segments[parents[k]]` (the
    root, segment 0, has parent -1; parents come first), and the prompt of `ASPECTS[j]` ends with `leaves[j]`."""

    id: str
    segments: list[list[int]]
    parents: list[int]
    leaves: list[int]
    truncated: bool

    def cost(self) -> int:
        """Tokens this sample puts through the model (each segment once)."""
        return sum(map(len, self.segments))

    def path(self, aspect_index: int) -> list[int]:
        """The segments of one aspect's prompt, root first."""
        chain = [self.leaves[aspect_index]]
        while self.parents[chain[-1]] >= 0:
            chain.append(self.parents[chain[-1]])
        return chain[::-1]

    def prompt_ids(self, aspect_index: int) -> list[int]:
        """The whole token ids of one aspect's rating prompt."""
        return [token for segment in self.path(aspect_index) for token in self.segments[segment]]


def _render(tokenizer: PreTrainedTokenizerBase, prompts: JudgePrompts, prompt: str, response: str) -> list[list[int]]:
    """Token ids of the six rating prompts of a sample (one batched tokenizer call)."""
    texts = [
        tokenizer.apply_chat_template(prompts.rating_messages(prompt, response, aspect), tokenize=False,
                                      add_generation_prompt=True)
        for aspect in ASPECTS
    ]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _common_prefix_length(rows: list[list[int]], start: int = 0) -> int:
    """Length of the token run that all `rows` share from `start` on."""
    shortest = min(len(row) for row in rows)
    for index in range(start, shortest):
        if any(row[index] != rows[0][index] for row in rows[1:]):
            return index - start
    return shortest - start


def token_tree(rows: list[list[int]]) -> tuple[list[list[int]], list[int], list[int]]:
    """(segments, parents, leaves) of the radix tree of `rows`: each run shared by several rows is one segment."""
    segments: list[list[int]] = []
    parents: list[int] = []
    leaves = [-1] * len(rows)

    def grow(members: list[int], start: int, parent: int) -> None:
        end = start + _common_prefix_length([rows[m] for m in members], start)
        node = len(segments)
        segments.append(rows[members[0]][start:end])
        parents.append(parent)
        groups: dict[int, list[int]] = {}
        for member in members:
            if len(rows[member]) == end:
                leaves[member] = node
            else:
                groups.setdefault(rows[member][end], []).append(member)
        for group in groups.values():
            grow(group, end, node)

    grow(list(range(len(rows))), 0, -1)
    return segments, parents, leaves


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
                   prompts: JudgePrompts | None = None) -> RatingInput:
    """The six rating prompts of a sample as a token tree, tokenised with the chat template, each at most `limit`
    tokens. `prompts`: the rating prompts (`judge.prompts`); None takes the packaged ones."""
    prompts = prompts or load_judge_prompts()
    rows, truncated = _fit(tokenizer, prompts, prompt_text(messages), response_text(messages), limit)
    segments, parents, leaves = token_tree(rows)
    return RatingInput(sample_id, segments, parents, leaves, truncated)
