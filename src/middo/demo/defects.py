"""Planted defects: wrong answers, garbled or underspecified prompts (over-hard items are drawn by the families)."""

from __future__ import annotations

import random

from middo.demo.tasks import Item, family, render

DEFECTS = ("wrong_answer", "garbled", "over_hard")
"""Per-item defects recorded in `meta.planted`; items of rare families that carry none are `rare_family`."""


def wrong_answer(item: Item, rng: random.Random) -> str:
    """A plausible answer that differs from the correct one."""
    answer = family(item.family).wrong(item, rng)
    if answer == family(item.family).solve(item):
        raise AssertionError(f"family {item.family} produced its correct answer as a wrong one for {item}")
    return answer


def noisy_words(text: str, rng: random.Random, rate: float = 0.6) -> str:
    """Typos in the words of `text`: a swap, a dropped or a doubled letter in some words of 4+ letters."""
    out = []
    for word in text.split(" "):
        if len(word) >= 4 and word.isalpha() and rng.random() < rate:
            i = rng.randrange(1, len(word) - 2)
            edit = rng.choice(("swap", "drop", "double"))
            if edit == "swap":
                word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
            elif edit == "drop":
                word = word[:i] + word[i + 1 :]
            else:
                word = word[:i] + word[i] + word[i:]
        out.append(word)
    return " ".join(out)


def garbled_prompt(item: Item, template_index: int, rng: random.Random) -> tuple[str, str]:
    """A prompt with typos in its wording, or with a part missing; returns (prompt, how) with how in noise|missing."""
    if rng.random() < 0.5:
        clean = render(item, template_index)
        for _ in range(20):
            text = render(item, template_index, edit_literal=lambda words: noisy_words(words, rng))
            if text != clean:
                return text.lower() if rng.random() < 0.3 else text, "noise"
    return render(underspecified(item), template_index), "missing"


def underspecified(item: Item) -> Item:
    """`item` with an argument the question needs left out (the answer can no longer be worked out)."""
    if item.family in ("count", "list"):
        return Item(item.family, item.kind, ())
    blank = {"arith": 2, "compare": 1}.get(item.family, 0)
    return Item(item.family, item.kind, tuple(None if i == blank else a for i, a in enumerate(item.args)))
