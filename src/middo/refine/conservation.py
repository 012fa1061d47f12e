"""Conservation: every id of D(r-1) is in D(r) as itself or as the parent of its replacement; ids stay unique."""

from __future__ import annotations

import polars as pl

from middo.data.schema import REPLACING_OPS
from middo.errors import MiddoError


class ConservationError(MiddoError):
    """D(r) lost a sample of D(r-1), or holds an id twice: a bug in refine, never a user error."""


def check_conservation(previous_ids: list[str], merged: pl.DataFrame) -> dict[str, int]:
    """Raise unless D(r) accounts for every id of D(r-1) exactly once; return the counts kept, replaced (parents)
    and added (new rows beyond one per replaced parent), so that kept + replaced + added is the size of D(r)."""
    duplicated = merged.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if duplicated:
        raise ConservationError(f"D(r) holds {len(duplicated)} ids more than once (e.g. {duplicated[:3]}); "
                                "refine must reject a child identical to an existing sample; please report this")
    before = set(previous_ids)
    new_rows = merged.filter(~pl.col("id").is_in(list(before)))
    replacing = new_rows.filter(pl.col("op").is_in(REPLACING_OPS))
    replaced = set(replacing["parent"].to_list())  # a parent may have two replacing children (simplify, improve)
    kept = before & set(merged["id"].to_list())
    twice = sorted(kept & replaced)
    if twice:
        raise ConservationError(f"samples both kept and replaced (e.g. {twice[:3]}); please report this")
    lost = sorted(before - kept - replaced)
    if lost:
        raise ConservationError(f"{len(lost)} samples of D(r-1) are neither kept nor replaced (e.g. {lost[:3]}); "
                                "refine must keep a parent whose child is rejected; please report this")
    orphans = new_rows.filter(pl.col("parent").is_null() | ~pl.col("parent").is_in(list(before)))["id"].to_list()
    if orphans:
        raise ConservationError(f"{len(orphans)} new samples name no parent in D(r-1) (e.g. {orphans[:3]})")
    return {"kept": len(kept), "replaced": len(replaced), "added": new_rows.height - len(replaced)}
