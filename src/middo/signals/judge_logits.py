"""The expected 0-10 rating from a model's next-token distribution over the score tokens.

Which tokens a score is depends on the tokenizer: each score string is tokenised as the start of the assistant's
reply (the chat template's generation prompt followed by the score). `0`..`9` must each be one token. `10` is
either one token of its own, or the `1` token followed by a `0` token (Qwen-style tokenizers write every digit
alone); in that case the mass of the first-step `1` is split between 1 and 10 by the probability of `0` at the second
step (P(10) = P(1)·P(0|1), P(1) = P(1)·(1 - P(0|1))), read from the same forward pass by appending the `1` token to
every rating prompt. Any other split fails loudly, naming the score label and `judge.mode`: never a silent rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from middo.errors import ConfigError

SCORES = torch.arange(11, dtype=torch.float64)
FIX = "set judge.mode to `generate` (the reply is parsed) for this model"


@dataclass(frozen=True)
class ScoreTokens:
    """Token ids of the scores as the first tokens of a reply."""

    digits: tuple[int, ...]  # ids of "0".."9"
    ten: int | None  # id of "10" when it is one token
    ten_zero: int | None  # id of the "0" that follows "1" when "10" is two tokens

    @property
    def two_step(self) -> bool:
        """Whether `10` needs the second-step probability."""
        return self.ten is None


def score_tokens(tokenizer: PreTrainedTokenizerBase) -> ScoreTokens:
    """Tokenise each score as the start of an assistant reply; refuse tokenizers where that is not 1-2 tokens."""
    context = tokenizer.apply_chat_template([{"role": "user", "content": "Rate it."}], tokenize=False,
                                            add_generation_prompt=True)
    base = tokenizer(context, add_special_tokens=False)["input_ids"]

    def reply_ids(score: int) -> list[int]:
        full = tokenizer(context + str(score), add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base:
            raise ConfigError(f"the judge's tokenizer merges the score label {str(score)!r} into the chat template's "
                              f"generation prompt, so no token of the reply is the score; {FIX}")
        return full[len(base):]

    def pieces(ids: list[int]) -> str:
        return f"{len(ids)} tokens {[tokenizer.decode([token]) for token in ids]}"

    digits = [reply_ids(score) for score in range(10)]
    for score, ids in enumerate(digits):
        if len(ids) != 1:
            raise ConfigError(f"the score label {str(score)!r} is {pieces(ids)} of the judge's tokenizer, not one; "
                              f"the logits judge reads one token per digit; {FIX}")
    ten = reply_ids(10)
    if len(ten) == 1:
        return ScoreTokens(tuple(ids[0] for ids in digits), ten[0], None)
    if len(ten) == 2 and ten[0] == digits[1][0]:
        return ScoreTokens(tuple(ids[0] for ids in digits), None, ten[1])
    raise ConfigError(f"the score label '10' is {pieces(ten)} of the judge's tokenizer, neither one token nor the `1` "
                      f"token then one more; the logits judge cannot read its probability; {FIX}")


def expected_scores(first: torch.Tensor, second: torch.Tensor | None, tokens: ScoreTokens):
    """(expected score [R], score-token mass [R]) from logits [R, V] at the first reply position.

    `second` holds the logits after a `1` (needed when `tokens.two_step`).
    """
    probs = torch.softmax(first.double(), dim=-1)
    per_score = torch.zeros(first.shape[0], 11, dtype=torch.float64, device=first.device)
    per_score[:, :10] = probs[:, list(tokens.digits)]
    if tokens.two_step:
        if second is None:
            raise ValueError("the second-step logits are needed when 10 is two tokens")
        zero = torch.softmax(second.double(), dim=-1)[:, tokens.ten_zero]
        per_score[:, 10] = per_score[:, 1] * zero
        per_score[:, 1] = per_score[:, 1] * (1 - zero)
    else:
        per_score[:, 10] = probs[:, tokens.ten]
    mass = per_score.sum(dim=-1)
    expected = (per_score * SCORES.to(first.device)).sum(dim=-1) / mass
    return expected.cpu(), mass.cpu()
