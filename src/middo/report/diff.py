"""Compare two dataset files by id and lineage: kept, replaced (child of a removed parent), added, removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from middo.errors import InputError


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
    removed: list[str] = field(default_factory=list)
    """Ids of A that are neither in B nor the parent of a sample of B: lost, which refine never does."""

    def counts(self) -> dict[str, int]:
        """Number of samples in each category."""
        return {name: len(getattr(self, name)) for name in ("kept", "replaced", "added", "removed")}


def diff_datasets(before: pl.DataFrame, after: pl.DataFrame, lineage: dict[str, str] | None = None) -> DatasetDiff:
    """Compare two sample frames (columns `id`, `parent`, `op`) by id; lists are sorted for stable output.

    `lineage` maps ids of samples made between A and B (intermediate rounds) to their parents, so a sample replaced
    twice on the way counts as one replacement of its ancestor in A rather than as an addition and a removal.
    """
    before_ids = set(before["id"].to_list())
    after_ids = set(after["id"].to_list())
    new_rows = after.filter(~pl.col("id").is_in(list(before_ids))).sort("id")
    replaced, added = [], []
    for row in new_rows.select("id", "parent", "op").iter_rows(named=True):
        change = Change(row["id"], _ancestor(row["parent"], before_ids, lineage or {}), row["op"])
        replaces = change.op != "synthesize" and change.parent in before_ids and change.parent not in after_ids
        (replaced if replaces else added).append(change)
    replaced_parents = {change.parent for change in replaced}
    removed = sorted(before_ids - after_ids - replaced_parents)
    return DatasetDiff(sorted(before_ids & after_ids), replaced, added, removed)


def _ancestor(parent: str | None, before_ids: set[str], lineage: dict[str, str]) -> str | None:
    """Follow `lineage` from `parent` until an id of A (or the end of the known lineage)."""
    seen: set[str] = set()
    while parent is not None and parent not in before_ids and parent in lineage and parent not in seen:
        seen.add(parent)
        parent = lineage[parent]
    return parent


def rounds_lineage(project: str | Path, first: int, last: int) -> dict[str, str]:
    """child id -> parent id of every sample created in rounds first+1 .. last-1 (read from their datasets)."""
    lineage: dict[str, str] = {}
    for round_number in range(first + 1, last):
        frame = pl.read_parquet(resolve_dataset(str(round_number), project), columns=["id", "parent", "round"])
        made = frame.filter((pl.col("round") == round_number) & pl.col("parent").is_not_null())
        lineage.update(zip(made["id"].to_list(), made["parent"].to_list(), strict=True))
    return lineage


def resolve_dataset(spec: str, project: str | Path = ".") -> Path:
    """A round number (`2`) means `data/r2/dataset.parquet` of the project; anything else is a file path."""
    path = Path(project) / f"data/r{int(spec)}/dataset.parquet" if spec.isdigit() else Path(spec)
    if not path.exists():
        hint = "run `dvc repro` to build that round" if spec.isdigit() else "pass a dataset Parquet file"
        raise InputError(f"{path}: no such dataset; {hint}")
    return path
