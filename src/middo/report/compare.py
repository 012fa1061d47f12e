"""Two datasets (rounds of the workspace, or of two revisions or experiments) compared sample by sample, with the
round's flags when both sides are the same round."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from middo.report.diff import DatasetDiff, diff_datasets, rounds_lineage
from middo.report.revisions import Side

FLAG_COLUMNS = ("hard", "sparse", "low_quality")


@dataclass(frozen=True)
class FlagChange:
    """A sample whose flags differ between the two sides (`None`: not in that side's flags table)."""

    id: str
    before: tuple[str, ...] | None
    after: tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """Both datasets, their diff, and the samples whose flags changed (None when the round has no flags to compare)."""

    before: pl.DataFrame
    after: pl.DataFrame
    diff: DatasetDiff
    flag_changes: list[FlagChange] | None


def compare(side_a: Side, spec_a: str, side_b: Side, spec_b: str) -> Comparison:
    """Compare dataset `spec_a` on `side_a` with `spec_b` on `side_b` (round numbers or dataset paths).

    Between round numbers a < b, lineage is followed through the rounds in between (read on side B). Between the
    same round r >= 1 on two sides, the flags of round r are compared too.
    """
    before, after = side_a.dataset(spec_a), side_b.dataset(spec_b)
    rounds = spec_a.isdigit() and spec_b.isdigit()
    lineage = rounds_lineage(side_b, int(spec_a), int(spec_b)) if rounds and int(spec_a) < int(spec_b) else None
    flags = None
    if rounds and spec_a == spec_b and int(spec_a) >= 1:
        path = f"data/r{spec_a}/flags.parquet"
        flags = flag_changes(side_a.table(path), side_b.table(path))
    return Comparison(before, after, diff_datasets(before, after, lineage), flags)


def flag_changes(before: pl.DataFrame, after: pl.DataFrame) -> list[FlagChange]:
    """Samples (by id, sorted) whose set of flags differs between two flags tables."""
    flags_a, flags_b = _flag_sets(before), _flag_sets(after)
    changed = [i for i in sorted(flags_a.keys() | flags_b.keys()) if flags_a.get(i) != flags_b.get(i)]
    return [FlagChange(i, flags_a.get(i), flags_b.get(i)) for i in changed]


def _flag_sets(flags: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    rows = flags.select("id", *FLAG_COLUMNS).iter_rows(named=True)
    return {row["id"]: tuple(name for name in FLAG_COLUMNS if row[name]) for row in rows}
