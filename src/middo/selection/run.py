"""The select stage: read D(r-1) and its three signal tables, join them by id (1:1), flag, write outputs."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from middo.data.schema import read_samples
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.selection.config import SelectConfig
from middo.selection.metrics import histogram_table, selection_metrics
from middo.selection.rules import Selection, select_flags
from middo.tables import join_by_id, write_table

log = get_logger(__name__)

TABLE_COLUMNS = {"scores": ("loss_pre", "loss_cur"), "knn": ("knn_sim",), "ratings": ("quality",)}


def join_signals(data: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """`id` of the dataset plus the signal columns, each table joined by id with 1:1 validation."""
    joined = data.select("id")
    for name, frame in tables.items():
        missing = [c for c in ("id", *TABLE_COLUMNS[name]) if c not in frame.columns]
        if missing:
            raise InputError(f"{name} table lacks columns {missing}; re-run the stage that writes it")
        joined = join_by_id(joined, frame.select("id", *TABLE_COLUMNS[name]), "dataset", f"{name} table")
    return joined


def read_table(path: str | Path, name: str) -> pl.DataFrame:
    """Read one signal table, with an error naming the stage that writes it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no {name} table; run the stage that writes it first")
    return pl.read_parquet(path)


def run_select(
    data: str | Path,
    scores: str | Path,
    knn: str | Path,
    ratings: str | Path,
    output: str | Path,
    metrics: str | Path,
    config: SelectConfig,
    plot: str | Path | None = None,
) -> Selection:
    """Write the flags table (in dataset order), select.json and, if `plot` is given, the histogram CSV."""
    samples = read_samples(data)
    tables = {name: read_table(path, name) for name, path in (("scores", scores), ("knn", knn), ("ratings", ratings))}
    joined = samples.select("id").join(join_signals(samples, tables), on="id", how="left", maintain_order="left")
    selection = select_flags(joined, config)
    write_table(selection.flags, output)
    summary = selection_metrics(selection, config)
    write_metrics(summary, metrics)
    if plot is not None:
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        histogram_table(selection).write_csv(plot)
    log.info("select (%s): %s of %d samples flagged %s", config.mode, summary["counts"]["any"], summary["n_samples"],
             {k: v for k, v in summary["counts"].items() if k not in ("any", "none")})
    return selection
