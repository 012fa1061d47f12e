"""Turning judge replies into 0-10 ratings: strict (the reply is only a rating) or the first number (the reference's);
NaN when there is none."""

from __future__ import annotations

import math
import re

MAX_SCORE = 10

# the whole reply must be the rating: "7", "7.", "7/10", " 10 " -- anything else is unparseable
_STRICT = re.compile(r"\s*(10|[0-9])\s*(?:/\s*10)?\s*\.?\s*", re.ASCII)
_FIRST_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def parse_rating(reply: str | None) -> float:
    """The rating in a reply that is only a whole number 0-10 (optionally `/10`), else NaN."""
    if reply is None:
        return math.nan
    match = _STRICT.fullmatch(reply)
    return float(match.group(1)) if match else math.nan


def parse_first_number(reply: str | None) -> float:
    """The first number anywhere in a reply, clipped to 0-10 (the reference's reading); NaN when there is none."""
    match = _FIRST_NUMBER.search(reply or "")
    return min(float(match.group(0)), MAX_SCORE) if match else math.nan


PARSERS = {"strict": parse_rating, "first_number": parse_first_number}
"""`judge.parse` -> the function that reads a reply."""


def first_number(reply: str | None) -> float:
    """The first number anywhere in a reply, clipped to 0-10; 0 when there is none.

    The reference's procedure with its bug (`bench/diagnose.py`), kept only to compare against: it turns an
    unparseable reply into a 0 rating, which the pipeline never does (`parse_first_number` gives NaN).
    """
    match = _FIRST_NUMBER.search(reply or "")
    return min(float(match.group(0)), MAX_SCORE) if match else 0.0


def expected_from_top_logprobs(first: dict[str, float], second: dict[str, float] | None) -> tuple[float, float]:
    """(expected score, probability mass on score tokens) from the top alternatives of the first reply tokens.

    `first` maps token text to logprob at the first reply position. A `10` token counts as 10. When the first
    token is `1`, `second` (the alternatives after a `1`, or None if the reply did not start with `1`) splits its
    mass between 1 and 10 by the probability of a following `0`; without it the mass stays on 1.
    """
    probs = [0.0] * (MAX_SCORE + 1)
    for token, logprob in first.items():
        text = token.strip()
        if text.isascii() and text.isdigit() and int(text) <= MAX_SCORE:
            probs[int(text)] += math.exp(logprob)
    if second is not None and probs[1] > 0:
        zero = sum(math.exp(lp) for token, lp in second.items() if token.strip() == "0" and not token.startswith(" "))
        probs[10] += probs[1] * zero
        probs[1] *= 1 - zero
    mass = sum(probs)
    if mass <= 0:
        return math.nan, 0.0
    return sum(score * p for score, p in enumerate(probs)) / mass, mass
