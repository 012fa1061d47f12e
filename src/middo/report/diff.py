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
    op: str


@dataclass(frozen=True)
class DatasetDiff:
    """How dataset B differs from dataset A; every id of A is in exactly one of kept, replaced parents, removed."""

    kept: list[str] = field(default_factory=list)
    replaced: list[Change] = field(default_factory=list)
    """Children in B whose parent is in A but no longer in B (simplify, improve)."""
    added: list[Change] = field(default_factory=list)
    """Samples of B that replace nothing of A (synthesize: the parent stays; or no parent in A)."""
    removed: list[str] = field(default_factory=list)
    """Ids of A that are neither in B nor the parent of a sample of B: lost, which refine never does."""

    def counts(self) -> dict[str, int]:
        """Number of samples in each category."""
        return {name: len(getattr(self, name)) for name in ("kept", "replaced", "added", "removed")}


def diff_datasets(before: pl.DataFrame, after: pl.DataFrame) -> DatasetDiff:
    """Compare two sample frames (columns `id`, `parent`, `op`) by id; lists are sorted for stable output."""
    before_ids = set(before["id"].to_list())
    after_ids = set(after["id"].to_list())
    new_rows = after.filter(~pl.col("id").is_in(list(before_ids))).sort("id")
    replaced, added = [], []
    for row in new_rows.select("id", "parent", "op").iter_rows(named=True):
        change = Change(row["id"], row["parent"], row["op"])
        gone_parent = row["parent"] in before_ids and row["parent"] not in after_ids
        (replaced if gone_parent else added).append(change)
    replaced_parents = {change.parent for change in replaced}
    removed = sorted(before_ids - after_ids - replaced_parents)
    return DatasetDiff(sorted(before_ids & after_ids), replaced, added, removed)


def resolve_dataset(spec: str, project: str | Path = ".") -> Path:
    """A round number (`2`) means `data/r2/dataset.parquet` of the project; anything else is a file path."""
    path = Path(project) / f"data/r{int(spec)}/dataset.parquet" if spec.isdigit() else Path(spec)
    if not path.exists():
        hint = "run `dvc repro` to build that round" if spec.isdigit() else "pass a dataset Parquet file"
        raise InputError(f"{path}: no such dataset; {hint}")
    return path
