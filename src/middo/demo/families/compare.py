"""Comparison (rare in the seed set): the larger or smaller of two digits; five 2-digit numbers are over-hard."""

from __future__ import annotations

import random
import re

from middo.demo.tasks import Item, best_keyword, join_items

name = "compare"
_KINDS = ("larger", "smaller")
_WORDS = {"larger": "larger", "smaller": "smaller", "largest": "larger", "smallest": "smaller"}


def _digits(rng: random.Random, a: int, b: int) -> tuple[int, int]:
    return (a, b) if a != b else (a, (b + rng.randint(1, 8)) % 10)


def draw(rng: random.Random, hard: bool) -> Item:
    """`Which is larger, 7 or 4?`; over-hard: the largest/smallest of five distinct 2-digit numbers."""
    kind = rng.choice(_KINDS)
    if hard:
        return Item(name, kind, tuple(rng.sample(range(10, 100), 5)))
    return Item(name, kind, _digits(rng, rng.randint(0, 9), rng.randint(0, 9)))


def templates(item: Item) -> tuple[str, ...]:
    if len(item.args) > 2:
        return ("Which is the {most} of {numbers}?", "Name the {most} number among {numbers}.")
    return (
        "Which is {kind}, {a} or {b}?",
        "Which number is {kind}: {a} or {b}?",
        "Tell me the {kind} of {a} and {b}.",
    )


def slots(item: Item) -> dict[str, str]:
    values = ["" if a is None else str(a) for a in item.args]
    most = "largest" if item.kind == "larger" else "smallest"
    return {"kind": item.kind, "most": most, "numbers": join_items(values), "a": values[0], "b": values[-1]}


def solve(item: Item) -> str:
    return str(max(item.args) if item.kind == "larger" else min(item.args))


def is_hard(item: Item) -> bool:
    return len(item.args) > 2 or max(item.args) > 9


def simplify(item: Item) -> Item:
    """Two single digits: the skill is the same comparison."""
    return Item(name, item.kind, _digits(random.Random(item.args[1]), item.args[0] % 10, item.args[1] % 10))


def wrong(item: Item, rng: random.Random) -> str:
    right = int(solve(item))
    others = [a for a in item.args if a != right]
    return str(rng.choice(others))


def parse(text: str) -> Item | None:
    word = best_keyword(text, tuple(_WORDS))
    if word is None or "+" in text or not re.search(r"\d", text):  # a digit tells it from "the opposite of small"
        return None
    numbers = tuple(int(n) for n in re.findall(r"\d+", text))
    if len(numbers) < 2:
        numbers = (*numbers, None)
    return Item(name, _WORDS[word], numbers)


def fill(item: Item, rng: random.Random) -> Item:
    a = item.args[0] if item.args and item.args[0] is not None else rng.randint(0, 9)
    return Item(name, item.kind, _digits(rng, a % 10, rng.randint(0, 9)))
