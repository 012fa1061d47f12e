"""List operations on letters: reverse 3 items, name the first or last item; reversing 8-11 items is over-hard."""

from __future__ import annotations

import random

from middo.demo.tasks import Item, best_keyword, join_items, letters_after_colon
from middo.demo.world import LETTERS

name = "list"
_KINDS = ("reverse", "first", "last")


def _letters(rng: random.Random, n: int) -> tuple[str, ...]:
    return tuple(rng.sample(LETTERS, n))


def draw(rng: random.Random, hard: bool) -> Item:
    if hard:
        return Item(name, "reverse", _letters(rng, rng.randint(8, 11)))
    kind = rng.choice(_KINDS)
    return Item(name, kind, _letters(rng, 3 if kind == "reverse" else rng.randint(3, 5)))


def templates(item: Item) -> tuple[str, ...]:
    if item.kind == "reverse":
        return ("Reverse the list: {items}.", "Write this list in reverse order: {items}.")
    return (
        f"What is the {item.kind} item in the list: {{items}}?",
        f"Name the {item.kind} item of this list: {{items}}.",
    )


def slots(item: Item) -> dict[str, str]:
    return {"items": join_items(item.args)}


def solve(item: Item) -> str:
    if item.kind == "reverse":
        return join_items(item.args[::-1])
    return item.args[0] if item.kind == "first" else item.args[-1]


def is_hard(item: Item) -> bool:
    return len(item.args) > 5


def simplify(item: Item) -> Item:
    return Item(name, item.kind, item.args[:3])


def wrong(item: Item, rng: random.Random) -> str:
    if item.kind == "reverse":
        return join_items(item.args)  # the list as given, not reversed
    right = solve(item)
    return rng.choice([x for x in item.args if x != right] or [c for c in LETTERS if c != right])


def parse(text: str) -> Item | None:
    # "reverse" first: a typo such as "lst" for "list" would otherwise read as "last"
    kind = best_keyword(text, ("reverse",)) or best_keyword(text, ("first", "last"))
    if kind is None:
        return None
    return Item(name, kind, letters_after_colon(text))


def fill(item: Item, rng: random.Random) -> Item:
    return Item(name, item.kind, _letters(rng, 3 if item.kind == "reverse" else rng.randint(3, 5)))
