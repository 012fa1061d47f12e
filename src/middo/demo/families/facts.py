"""Lookups in the fictional fact table; the two-hop `capital of the country whose animal is the owl` is over-hard."""

from __future__ import annotations

import random
import re

from middo.demo.tasks import Item, best_keyword
from middo.demo.world import COUNTRIES, RELATIONS, country, country_by

name = "fact"
_KEYWORDS = {
    "capital": "capital",
    "city": "capital",
    "animal": "animal",
    "color": "color",
    "flag": "color",
    "river": "river",
}
_TEMPLATES = {
    "capital": ("What is the capital of {c}?", "Name the capital city of {c}.", "Which city is the capital of {c}?"),
    "animal": ("What animal lives in {c}?", "Which animal is found in {c}?", "Name the animal of {c}."),
    "color": (
        "What color is the flag of {c}?",
        "Name the color of the flag of {c}.",
        "The flag of {c} has which color?",
    ),
    "river": ("Which river flows through {c}?", "Name the river of {c}.", "What river runs through {c}?"),
}


def draw(rng: random.Random, hard: bool) -> Item:
    """`What is the capital of Vendora?`; over-hard: the capital/river of the country whose animal/color is X."""
    target = rng.choice(RELATIONS)
    place = rng.choice(COUNTRIES)
    if not hard:
        return Item(name, target, (place.name,))
    target = rng.choice(("capital", "river"))
    key = rng.choice(("animal", "color"))
    return Item(name, target, (key, getattr(place, key)))


def templates(item: Item) -> tuple[str, ...]:
    if len(item.args) == 2:
        return ("What is the {kind} of the country whose {key} is {value}?",)
    return _TEMPLATES[item.kind]


def slots(item: Item) -> dict[str, str]:
    if len(item.args) == 2:
        return {"kind": item.kind, "key": item.args[0], "value": item.args[1]}
    return {"c": item.args[0] or ""}


def _place(item: Item):
    return country_by(*item.args) if len(item.args) == 2 else country(item.args[0])


def solve(item: Item) -> str:
    return getattr(_place(item), item.kind)


def is_hard(item: Item) -> bool:
    return len(item.args) == 2


def simplify(item: Item) -> Item:
    """The one-hop lookup on the country the two-hop question meant."""
    return Item(name, item.kind, (_place(item).name,))


def wrong(item: Item, rng: random.Random) -> str:
    right = solve(item)
    return getattr(rng.choice([c for c in COUNTRIES if getattr(c, item.kind) != right]), item.kind)


def parse(text: str) -> Item | None:
    relation = best_keyword(text, tuple(_KEYWORDS))
    lowered = text.lower()
    places = [c.name for c in COUNTRIES if re.search(rf"\b{c.name.lower()}\b", lowered)]
    if relation is None and not places:
        return None
    if best_keyword(text, ("whose", "country")) is not None and not places:
        return _parse_two_hop(text)
    target = _KEYWORDS[relation] if relation else "capital"
    return Item(name, target, (places[0] if places else None,))


def _parse_two_hop(text: str) -> Item | None:
    words = text.lower().replace("?", " ").replace(".", " ").split()
    for key in ("animal", "color"):
        values = {getattr(c, key) for c in COUNTRIES}
        found = [w for w in words if w in values]
        if found:
            target = best_keyword(text.split("whose")[0], ("capital", "river")) or "capital"
            return Item(name, target, (key, found[-1]))
    return Item(name, "capital", (None,))


def fill(item: Item, rng: random.Random) -> Item:
    if item.args and item.args[0] is not None and len(item.args) == 1:
        return item
    return Item(name, item.kind if item.kind in RELATIONS else "capital", (rng.choice(COUNTRIES).name,))
