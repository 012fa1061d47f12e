"""Word templates: the opposite of a word, the day or month after/before another; `k days after` is over-hard."""

from __future__ import annotations

import random
import re

from middo.demo.tasks import Item, best_keyword
from middo.demo.world import ANTONYMS, OPPOSITE, SEQUENCES

name = "word"
_SEQ_KINDS = ("after", "before")


def _sequence(value: str) -> tuple[str, tuple[str, ...]]:
    """(noun, sequence) holding `value`, e.g. ('day', DAYS) for Monday."""
    return next((noun, seq) for noun, seq in SEQUENCES.items() if value in seq)


def draw(rng: random.Random, hard: bool) -> Item:
    if hard:
        return Item(name, "after", (rng.choice(SEQUENCES["day"]), rng.randint(2, 6)))
    if rng.random() < 0.55:
        return Item(name, "opposite", (rng.choice(rng.choice(ANTONYMS)),))
    return Item(name, rng.choice(_SEQ_KINDS), (rng.choice(rng.choice(list(SEQUENCES.values()))), 1))


def templates(item: Item) -> tuple[str, ...]:
    if item.kind == "opposite":
        return ("What is the opposite of {word}?", "Give the opposite of {word}.", "Name the opposite of {word}.")
    if item.args[1] is not None and item.args[1] > 1:
        return ("What {noun} comes {k} {noun}s {kind} {value}?", "Which {noun} is {k} {noun}s {kind} {value}?")
    if item.kind == "after":
        return ("What {noun} comes after {value}?", "Which {noun} follows {value}?", "Name the {noun} after {value}.")
    return ("What {noun} comes before {value}?", "Which {noun} precedes {value}?", "Name the {noun} before {value}.")


def slots(item: Item) -> dict[str, str]:
    if item.kind == "opposite":
        return {"word": item.args[0] or ""}
    value, k = item.args
    noun = _sequence(value)[0] if value else "day"
    return {"noun": noun, "value": value or "", "k": str(k), "kind": item.kind}


def solve(item: Item) -> str:
    if item.kind == "opposite":
        return OPPOSITE[item.args[0]]
    value, k = item.args
    seq = _sequence(value)[1]
    step = k if item.kind == "after" else -k
    return seq[(seq.index(value) + step) % len(seq)]


def is_hard(item: Item) -> bool:
    return item.kind != "opposite" and item.args[1] > 1


def simplify(item: Item) -> Item:
    return Item(name, item.kind, (item.args[0], 1)) if item.kind != "opposite" else item


def wrong(item: Item, rng: random.Random) -> str:
    right = solve(item)
    pool = tuple(OPPOSITE) if item.kind == "opposite" else _sequence(item.args[0])[1]
    return rng.choice([w for w in pool if w != right and w != item.args[0]])


def parse(text: str) -> Item | None:
    lowered = text.lower()
    if best_keyword(text, ("opposite",)) is not None:
        found = [w for w in re.findall(r"[a-z]+", lowered) if w in OPPOSITE]
        return Item(name, "opposite", (found[-1] if found else None,))
    values = [v for seq in SEQUENCES.values() for v in seq if re.search(rf"\b{v.lower()}\b", lowered)]
    if not values and best_keyword(text, ("day", "month")) is None:
        return None
    kind = {"after": "after", "follows": "after", "before": "before", "precedes": "before"}
    word = best_keyword(text, tuple(kind)) or "after"
    offset = re.search(r"(\d+)\s+\w+\s+\w+", lowered)
    return Item(name, kind[word], (values[0] if values else None, int(offset.group(1)) if offset else 1))


def fill(item: Item, rng: random.Random) -> Item:
    if item.kind == "opposite":
        return Item(name, "opposite", (item.args[0] or rng.choice(rng.choice(ANTONYMS)),))
    value = item.args[0] or rng.choice(rng.choice(list(SEQUENCES.values())))
    return Item(name, item.kind, (value, 1))
