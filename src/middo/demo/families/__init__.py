"""Task family modules, in the order the simulated teacher tries them when it reads a prompt."""

from __future__ import annotations

from types import ModuleType

from middo.demo.families import arith, compare, count, facts, lists, words

# Order matters for recognition: `count` before `list` (both hold letter lists), `list` before `fact`.
FAMILIES: dict[str, ModuleType] = {m.name: m for m in (count, compare, arith, words, lists, facts)}
