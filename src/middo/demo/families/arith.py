"""Arithmetic: one-step single-digit sums and differences; multi-digit operands and long chains are over-hard."""

from __future__ import annotations

import random
import re

from middo.demo.tasks import Item

name = "arith"
_EXPR = re.compile(r"(\d+)((?:\s*[+\-]\s*\d+)+)")
_DANGLING = re.compile(r"(\d+)\s*([+\-])\s*(?!\s*\d)")


def _value(args: tuple) -> int:
    total = args[0]
    for op, number in zip(args[1::2], args[2::2], strict=True):
        total = total + number if op == "+" else total - number
    return total


def _pair(rng: random.Random, a: int, b: int, op: str) -> Item:
    if op == "-" and a < b:
        a, b = b, a  # answers stay non-negative
    return Item(name, "expr", (a, op, b))


def draw(rng: random.Random, hard: bool) -> Item:
    """A single-digit `a + b` / `a - b`; over-hard: two 2-3 digit operands or a chain of 4-5 digits."""
    if not hard:
        return _pair(rng, rng.randint(0, 9), rng.randint(0, 9), rng.choice("+-"))
    if rng.random() < 0.5:
        return _pair(rng, rng.randint(12, 999), rng.randint(12, 999), rng.choice("+-"))
    args: list = [rng.randint(1, 9)]
    for _ in range(rng.randint(3, 4)):
        op = rng.choice("+-")
        number = rng.randint(1, 9)
        if op == "-" and _value((*args, op, number)) < 0:
            op = "+"
        args += [op, number]
    return Item(name, "expr", tuple(args))


def templates(item: Item) -> tuple[str, ...]:
    return ("What is {expr}?", "Compute {expr}.", "Calculate {expr}.", "How much is {expr}?")


def slots(item: Item) -> dict[str, str]:
    return {"expr": " ".join("" if a is None else str(a) for a in item.args)}


def solve(item: Item) -> str:
    return str(_value(item.args))


def is_hard(item: Item) -> bool:
    return len(item.args) > 3 or max(item.args[0::2]) > 9


def simplify(item: Item) -> Item:
    """The first step in single digits: `47 + 86 + ...` -> `7 + 6`."""
    return _pair(random.Random(0), item.args[0] % 10, item.args[2] % 10, item.args[1])


def wrong(item: Item, rng: random.Random) -> str:
    right = _value(item.args)
    return str(max(0, right + rng.choice([-2, -1, 1, 2])) if right > 1 else right + rng.randint(1, 2))


def parse(text: str) -> Item | None:
    match = _EXPR.search(text)
    if match:
        tokens = re.findall(r"\d+|[+\-]", match.group(0))
        return Item(name, "expr", tuple(t if t in "+-" else int(t) for t in tokens))
    dangling = _DANGLING.search(text)
    if dangling:
        return Item(name, "expr", (int(dangling.group(1)), dangling.group(2), None))
    return None


def fill(item: Item, rng: random.Random) -> Item:
    a, op, b = item.args[0], item.args[1], item.args[2]
    return _pair(rng, a % 10, rng.randint(0, 9) if b is None else b % 10, op)
