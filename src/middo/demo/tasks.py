"""The demo task suite: task items with checkable answers, rendered as prompts, one family per module.

An `Item` is the structured form of a question (family, kind, arguments); a family knows how to draw items,
phrase them, solve them, make a simpler item that teaches the same skill, and read an item back out of
(possibly noisy) text, which is what the simulated teacher does.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from typing import Any, Protocol

from middo.errors import InputError


@dataclass(frozen=True)
class Item:
    """One question in structured form; `None` in `args` marks a part missing from an underspecified prompt."""

    family: str
    kind: str
    args: tuple

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in `meta.item`."""
        return {"family": self.family, "kind": self.kind, "args": list(self.args)}

    @staticmethod
    def from_json(value: dict[str, Any]) -> Item:
        """Inverse of `to_json`."""
        return Item(value["family"], value["kind"], tuple(value["args"]))

    @property
    def complete(self) -> bool:
        """True when no argument is missing."""
        return None not in self.args and len(self.args) > 0


class Family(Protocol):
    """What every task family module provides (see `middo.demo.families`)."""

    name: str

    def draw(self, rng: random.Random, hard: bool) -> Item: ...  # a random item, over-hard when `hard`
    def templates(self, item: Item) -> tuple[str, ...]: ...  # phrasings with `{slot}` fields
    def slots(self, item: Item) -> dict[str, str]: ...  # slot values ("" for a missing argument)
    def solve(self, item: Item) -> str: ...  # the correct short answer
    def is_hard(self, item: Item) -> bool: ...  # beyond the small model's reach
    def simplify(self, item: Item) -> Item: ...  # the one-step form that teaches the same skill
    def wrong(self, item: Item, rng: random.Random) -> str: ...  # a plausible wrong answer
    def parse(self, text: str) -> Item | None: ...  # read an item out of text, None if not this family
    def fill(self, item: Item, rng: random.Random) -> Item: ...  # complete the missing arguments


def family(name: str) -> Family:
    """The family module registered under `name`."""
    from middo.demo.families import FAMILIES

    if name not in FAMILIES:
        raise InputError(f"unknown demo task family {name!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def solve(item: Item) -> str:
    """The correct answer of a complete item."""
    return family(item.family).solve(item)


def render(item: Item, template_index: int, edit_literal=None) -> str:
    """The prompt text of `item` in phrasing `template_index`; `edit_literal` may rewrite the template's words."""
    fam = family(item.family)
    templates = fam.templates(item)
    template = templates[template_index % len(templates)]
    if edit_literal is not None:
        pieces = re.split(r"(\{[a-z_]+\})", template)
        template = "".join(p if p.startswith("{") else edit_literal(p) for p in pieces)
    text = template.format(**fam.slots(item))
    return re.sub(r"\s+([?.,:])", r"\1", re.sub(r" {2,}", " ", text)).strip()


def clean_phrasing(item: Item, text: str) -> bool:
    """True when one of the family's phrasings of `item` appears verbatim in `text` (the task carries no typos)."""
    return any(render(item, index) in text for index in range(len(family(item.family).templates(item))))


def recognise(text: str) -> Item | None:
    """The first family that reads an item out of `text` (families are tried in a fixed order)."""
    from middo.demo.families import FAMILIES

    for fam in FAMILIES.values():
        item = fam.parse(text)
        if item is not None:
            return item
    return None


# ---- helpers shared by the family modules -------------------------------------------------------------

STOPWORDS = frozenset(
    {"what", "is", "the", "of", "in", "a", "an", "and", "or", "which", "name", "give", "are", "there"}
    | {"list", "item", "items"}
)


def words_of(text: str) -> list[str]:
    """Lower-case alphabetic words of `text`, without the stop words every template shares."""
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOPWORDS]


def best_keyword(text: str, keywords: tuple[str, ...], cutoff: float = 0.75) -> str | None:
    """The keyword that some word of `text` matches best (tolerates typos), or None below `cutoff`."""
    best, best_score = None, cutoff
    for word in words_of(text):
        for keyword in keywords:
            score = 1.0 if word == keyword else difflib.SequenceMatcher(None, word, keyword).ratio()
            if score > best_score or (score == best_score and best is None):
                best, best_score = keyword, score
    return best


def letters_after_colon(text: str) -> tuple[str, ...]:
    """Single-letter list items written after the last colon, e.g. `...: b, d, a?` -> ('b', 'd', 'a')."""
    tail = text.rsplit(":", 1)[1] if ":" in text else ""
    return tuple(re.findall(r"\b([a-z])\b", tail))


def join_items(items: tuple) -> str:
    """How lists are written in prompts and answers."""
    return ", ".join(str(x) for x in items)
