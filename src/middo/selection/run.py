"""The select stage: read D(r-1) and its three signal tables, join them by id (1:1), flag, write outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from middo.data.schema import read_samples
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.selection.config import SelectConfig
from middo.selection.metrics import histogram_table, no_spread_columns, selection_metrics
from middo.selection.rules import Selection, select_flags
from middo.tables import join_by_id, read_table, write_table

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


@dataclass(frozen=True)
class SelectPaths:
    """Files of the select stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    scores: Path
    """Losses table of the round (Parquet)."""
    knn: Path
    """Neighbours table of the round (Parquet)."""
    ratings: Path
    """Judge ratings table of the round (Parquet)."""
    output: Path
    """Flags table to write (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""
    plot: Path | None = None
    """Histogram CSV to write (signal, bins, flagged, threshold)."""


def run_select(paths: SelectPaths, config: SelectConfig) -> Selection:
    """Write the flags table (in dataset order), select.json and, if `paths.plot`, the histogram CSV."""
    samples = read_samples(paths.data)
    sources = (("scores", "score", paths.scores), ("knn", "cluster", paths.knn), ("ratings", "judge", paths.ratings))
    tables = {name: read_table(path, stage) for name, stage, path in sources}
    joined = samples.select("id").join(join_signals(samples, tables), on="id", how="left", maintain_order="left")
    selection = select_flags(joined, config)
    write_table(selection.flags, paths.output)
    summary = selection_metrics(selection, config)
    write_metrics(summary, paths.metrics)
    if paths.plot is not None:
        paths.plot.parent.mkdir(parents=True, exist_ok=True)
        histogram_table(selection).write_csv(paths.plot)
    log.info("select (%s): %s of %d samples flagged %s", config.mode, summary["counts"]["any"], summary["n_samples"],
             {k: v for k, v in summary["counts"].items() if k not in ("any", "none")})
    for name, why in summary["unusable_signals"].items():
        log.warning("select: signal %s is UNUSABLE (%s): its flag flags no sample this round", name, why)
    for name in no_spread_columns(selection):
        log.warning("select: %s has no spread (all %d finite values equal, to rounding): the flag that reads it flags "
                    "nothing; check the stage that wrote it", name, summary["n_samples"] - selection.stats[name].n_nan)
    return selection
