"""The plain-text pretraining corpus: statements about the fictional world, numbers, words and letters.

It teaches the base model the vocabulary and some of the facts, but never in the question/answer form of the
task suite, so the briefly pretrained M0 is weak at the tasks yet not random.
"""

from __future__ import annotations

import random

from middo.demo.world import ANTONYMS, COUNTRIES, LETTERS, SEQUENCES

_FACT_SENTENCES = (
    "{capital} is the capital of {name}.",
    "The capital city of {name} is {capital}.",
    "In {name} you can often see the {animal}.",
    "The {animal} is the animal of {name}.",
    "The flag of {name} is {color}.",
    "People in {name} paint their doors {color}, the color of their flag.",
    "The river {river} flows through {name}.",
    "Boats sail down the {river} to {capital}.",
)
_NUMBER_SENTENCES = ("{a} + {b} = {s}.", "{a} plus {b} makes {s}.", "{s} - {b} = {a}.", "{s} minus {a} leaves {b}.")
_ORDER_SENTENCES = ("{big} is larger than {small}.", "{small} is smaller than {big}.")
_WORD_SENTENCES = ("{a} is the opposite of {b}.", "Some things are {a} and some are {b}.")


def corpus_lines(n_lines: int, seed: int) -> list[str]:
    """`n_lines` generated sentences, deterministic for `seed`."""
    rng = random.Random(seed)
    makers = (_fact, _fact, _number, _order, _word, _sequence, _letters)
    return [rng.choice(makers)(rng) for _ in range(n_lines)]


def _fact(rng: random.Random) -> str:
    place = rng.choice(COUNTRIES)
    return rng.choice(_FACT_SENTENCES).format(**vars(place))


def _number(rng: random.Random) -> str:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return rng.choice(_NUMBER_SENTENCES).format(a=a, b=b, s=a + b)


def _order(rng: random.Random) -> str:
    small, big = sorted(rng.sample(range(10), 2))
    return rng.choice(_ORDER_SENTENCES).format(big=big, small=small)


def _word(rng: random.Random) -> str:
    a, b = rng.choice(ANTONYMS)
    a, b = (a, b) if rng.random() < 0.5 else (b, a)
    return rng.choice(_WORD_SENTENCES).format(a=a.capitalize(), b=b)


def _sequence(rng: random.Random) -> str:
    noun, seq = rng.choice(list(SEQUENCES.items()))
    i = rng.randrange(len(seq))
    run = [seq[(i + k) % len(seq)] for k in range(rng.randint(3, 5))]
    return rng.choice((f"The {noun}s go {', '.join(run)}.", f"After {run[0]} comes {run[1]}."))


def _letters(rng: random.Random) -> str:
    picked = rng.sample(LETTERS, rng.randint(3, 6))
    if rng.random() < 0.5:
        return f"The box holds the letters {', '.join(picked)}."
    start = rng.randrange(20)
    return f"The alphabet runs {' '.join(LETTERS[start : start + 6])}."
