"""Counting (a rare family in the seed set): how many letters a short list holds; 11-16 items are over-hard."""

from __future__ import annotations

import random

from middo.demo.tasks import Item, best_keyword, join_items, letters_after_colon, words_of
from middo.demo.world import LETTERS

name = "count"


def _letters(rng: random.Random, n: int) -> tuple[str, ...]:
    return tuple(rng.choice(LETTERS) for _ in range(n))


def draw(rng: random.Random, hard: bool) -> Item:
    return Item(name, "count", _letters(rng, rng.randint(11, 16) if hard else rng.randint(2, 6)))


def templates(item: Item) -> tuple[str, ...]:
    return (
        "How many items are in the list: {items}?",
        "How many letters does this list hold: {items}?",
        "Count the items, how many are there: {items}?",
    )


def slots(item: Item) -> dict[str, str]:
    return {"items": join_items(item.args)}


def solve(item: Item) -> str:
    return str(len(item.args))


def is_hard(item: Item) -> bool:
    return len(item.args) > 6


def simplify(item: Item) -> Item:
    return Item(name, "count", item.args[:4])


def wrong(item: Item, rng: random.Random) -> str:
    return str(len(item.args) + rng.choice([-1, 1, 2]))


def parse(text: str) -> Item | None:
    # the items follow a colon; "count" only as an exact word (a fuzzy one would take "country" too)
    if ":" not in text or (best_keyword(text, ("many",)) is None and "count" not in words_of(text)):
        return None
    return Item(name, "count", letters_after_colon(text))


def fill(item: Item, rng: random.Random) -> Item:
    return Item(name, "count", _letters(rng, rng.randint(2, 6)))
