"""Round tables: sidecars keyed by `id`, read and written as Parquet, joined 1:1 by id, never by position."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from middo.errors import InputError, JoinError


def join_by_id(left: pl.DataFrame, right: pl.DataFrame, left_name: str, right_name: str) -> pl.DataFrame:
    """Inner-join two tables on `id`, requiring both to hold exactly the same ids, each once."""
    for frame, name in ((left, left_name), (right, right_name)):
        if frame["id"].is_duplicated().any():
            raise JoinError(f"{name}: ids are not unique; re-run the stage that wrote it")
    left_ids, right_ids = set(left["id"].to_list()), set(right["id"].to_list())
    if left_ids != right_ids:
        only_left, only_right = sorted(left_ids - right_ids), sorted(right_ids - left_ids)
        raise JoinError(
            f"{left_name} and {right_name} do not cover the same samples: {len(only_left)} ids only in "
            f"{left_name} (e.g. {only_left[:3]}), {len(only_right)} only in {right_name} (e.g. {only_right[:3]}); "
            "both must come from the same round's dataset: re-run the stale stage"
        )
    return left.join(right, on="id", how="inner", validate="1:1")


def read_table(path: str | Path, stage: str) -> pl.DataFrame:
    """A round table (Parquet), with an error naming the stage that writes it when the file is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such table; the {stage} stage writes it: run that stage of this round first "
                         f"(`dvc repro {stage}-<round>`)")
    return pl.read_parquet(path)


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a signal table as Parquet, creating parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd")
    return path
