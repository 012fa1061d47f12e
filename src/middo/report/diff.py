"""Compare two datasets by id and lineage: kept, replaced (child of a removed parent), added, reverted, removed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from middo.report.revisions import Side


@dataclass(frozen=True)
class Change:
    """A sample of B that is not in A, with the lineage that explains it."""

    id: str
    parent: str | None
    """Its ancestor in A when the lineage reaches A (through intermediate rounds if given), else its own parent."""
    op: str


@dataclass(frozen=True)
class DatasetDiff:
    """How dataset B differs from dataset A; every id of A is in exactly one of kept, replaced parents, removed."""

    kept: list[str] = field(default_factory=list)
    replaced: list[Change] = field(default_factory=list)
    """Children in B (simplify, improve) whose parent is in A but no longer in B."""
    added: list[Change] = field(default_factory=list)
    """Samples of B that replace nothing of A (synthesize adds beside its parent; or no ancestor in A)."""
    reverted: list[Change] = field(default_factory=list)
    """Samples of A missing from B whose parent is in B: a change A made that B does not have (two versions of one
    round, e.g. two experiments: B kept the parent that A replaced). Never happens between consecutive rounds."""
    removed: list[str] = field(default_factory=list)
    """Ids of A that are neither in B nor the parent of a sample of B nor reverted: lost, which refine never does."""

    def counts(self) -> dict[str, int]:
        """Number of samples in each category."""
        return {name: len(getattr(self, name)) for name in ("kept", "replaced", "added", "reverted", "removed")}

    def by_op(self) -> dict[str, dict[str, int]]:
        """Replaced, added and reverted samples counted per operation."""
        return {name: dict(sorted(Counter(change.op for change in getattr(self, name)).items()))
                for name in ("replaced", "added", "reverted")}


def diff_datasets(before: pl.DataFrame, after: pl.DataFrame, lineage: dict[str, str] | None = None) -> DatasetDiff:
    """Compare two sample frames (columns `id`, `parent`, `op`) by id; lists are sorted for stable output.

    `lineage` maps ids of samples made between A and B (intermediate rounds) to their parents, so a sample replaced
    twice on the way counts as one replacement of its ancestor in A rather than as an addition and a removal.
    """
    before_ids = set(before["id"].to_list())
    after_ids = set(after["id"].to_list())
    gone_rows = before.filter(~pl.col("id").is_in(list(after_ids))).sort("id")
    reverted = [Change(row["id"], row["parent"], row["op"]) for row in gone_rows.iter_rows(named=True)
                if row["parent"] in after_ids and row["parent"] not in before_ids]
    restored = {change.parent for change in reverted}
    new_rows = after.filter(~pl.col("id").is_in(list(before_ids | restored))).sort("id")
    replaced, added = [], []
    for row in new_rows.select("id", "parent", "op").iter_rows(named=True):
        change = Change(row["id"], _ancestor(row["parent"], before_ids, lineage or {}), row["op"])
        replaces = change.op != "synthesize" and change.parent in before_ids and change.parent not in after_ids
        (replaced if replaces else added).append(change)
    accounted = {change.parent for change in replaced} | {change.id for change in reverted}
    removed = sorted(before_ids - after_ids - accounted)
    return DatasetDiff(sorted(before_ids & after_ids), replaced, added, reverted, removed)


def _ancestor(parent: str | None, before_ids: set[str], lineage: dict[str, str]) -> str | None:
    """Follow `lineage` from `parent` until an id of A (or the end of the known lineage)."""
    seen: set[str] = set()
    while parent is not None and parent not in before_ids and parent in lineage and parent not in seen:
        seen.add(parent)
        parent = lineage[parent]
    return parent


def rounds_lineage(side: Side, first: int, last: int) -> dict[str, str]:
    """child id -> parent id of every sample created in rounds first+1 .. last-1 (read from their datasets)."""
    lineage: dict[str, str] = {}
    for round_number in range(first + 1, last):
        frame = side.dataset(str(round_number))
        made = frame.filter((pl.col("round") == round_number) & pl.col("parent").is_not_null())
        lineage.update(zip(made["id"].to_list(), made["parent"].to_list(), strict=True))
    return lineage
