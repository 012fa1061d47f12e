"""The fixed fictional world of the demo: a fact table, word pairs and sequences (no randomness here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    """One row of the fact table; every value is unique across countries so inverse lookups are well defined."""

    name: str
    capital: str
    animal: str
    color: str
    river: str


COUNTRIES = (
    Country("Vendora", "Palmu", "owl", "teal", "Isk"),
    Country("Korrin", "Tesh", "lynx", "amber", "Maro"),
    Country("Oskavel", "Brint", "heron", "crimson", "Valo"),
    Country("Tarumi", "Quell", "otter", "violet", "Senn"),
    Country("Ilvane", "Doro", "badger", "olive", "Kett"),
    Country("Merrow", "Zant", "falcon", "coral", "Umber"),
    Country("Quistal", "Fenn", "moose", "indigo", "Rasha"),
    Country("Belunor", "Cavo", "gecko", "saffron", "Lidd"),
    Country("Sarnith", "Wold", "raven", "silver", "Ombra"),
    Country("Yelmark", "Pyra", "bison", "scarlet", "Tovi"),
    Country("Draskin", "Holt", "seal", "cyan", "Murn"),
    Country("Ostrel", "Mirra", "wolf", "ochre", "Brael"),
    Country("Fanuvia", "Kesh", "crane", "lilac", "Anda"),
    Country("Gorrin", "Selt", "ibex", "navy", "Peloq"),
    Country("Havast", "Nimb", "lemur", "rose", "Ferra"),
    Country("Jostiva", "Arla", "stoat", "mint", "Gloam"),
    Country("Lumbra", "Vosk", "tapir", "gold", "Hessa"),
    Country("Nerith", "Ulma", "koala", "bronze", "Cindr"),
    Country("Pallonia", "Rusk", "panda", "azure", "Dovv"),
    Country("Rethmar", "Ebon", "yak", "plum", "Wend"),
    Country("Tovany", "Glim", "mole", "ivory", "Yarr"),
    Country("Uldren", "Skol", "finch", "jade", "Quor"),
    Country("Weskar", "Lunn", "newt", "rust", "Zephi"),
    Country("Zembla", "Orra", "hare", "sand", "Nolt"),
)

RELATIONS = ("capital", "animal", "color", "river")
"""Fact relations a question can ask about (attributes of `Country`)."""

ANTONYMS = (
    *(("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"), ("light", "dark"), ("open", "closed")),
    *(("early", "late"), ("wet", "dry"), ("full", "empty"), ("hard", "soft"), ("loud", "quiet"), ("near", "far")),
    *(("old", "new"), ("rich", "poor"), ("strong", "weak"), ("thick", "thin"), ("high", "low"), ("happy", "sad")),
    *(("clean", "dirty"), ("long", "short"), ("sweet", "sour"), ("inside", "outside"), ("push", "pull")),
    *(("win", "lose"), ("brave", "timid"), ("heavy", "airy"), ("wide", "narrow"), ("warm", "cool")),
    *(("young", "elderly"), ("smooth", "rough"), ("tall", "stubby"), ("cheap", "costly"), ("awake", "asleep")),
    *(("calm", "stormy"), ("north", "south")),
)
OPPOSITE = {a: b for a, b in ANTONYMS} | {b: a for a, b in ANTONYMS}

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
SEQUENCES = {"day": DAYS, "month": MONTHS}
"""Cyclic sequences the `word` family steps through."""
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def country(name: str) -> Country:
    """The fact-table row of a country name (exact)."""
    return next(c for c in COUNTRIES if c.name == name)


def country_by(relation: str, value: str) -> Country:
    """The unique country whose `relation` equals `value` (inverse lookup)."""
    return next(c for c in COUNTRIES if getattr(c, relation) == value)
