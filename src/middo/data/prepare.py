"""The `prepare` stage: ingest the seed set into D(0) and the eval set, and count what happened."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from middo.data.config import DataConfig
from middo.data.ingest import ingest
from middo.log import get_logger, write_metrics

_COUNTS = ("rows", "samples", "duplicates", "skipped", "skipped_total", "dropped", "dropped_total", "repaired",
           "special_token_rows", "formats")


@dataclass(frozen=True)
class PreparePaths:
    """Files of the prepare stage."""

    output: Path
    """D(0) dataset to write (Parquet)."""
    eval_output: Path
    """Eval dataset to write (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""


def run_prepare(paths: PreparePaths, config: DataConfig) -> dict[str, Any]:
    """Ingest `data.seed` and `data.eval`, write both datasets and the metrics."""
    metrics = prepare(config, list(config.seed_inputs), config.eval, paths.output, paths.eval_output)
    write_metrics(metrics, paths.metrics)
    return metrics


def prepare(
    config: DataConfig, seed_inputs: list[str], eval_input: str, output: str | Path, eval_output: str | Path
) -> dict[str, Any]:
    """Write D(0) and the eval dataset; return metrics (counts per set, eval samples also in the seed set)."""
    seed = ingest(seed_inputs, output, config.format, config.source, config.on_error, config.policy).to_dict()
    held_out = ingest([eval_input], eval_output, config.format, config.source, config.on_error,
                      config.policy).to_dict()
    seed_ids = pl.read_parquet(output, columns=["id"])["id"]
    eval_ids = pl.read_parquet(eval_output, columns=["id"])["id"]
    overlap = int(eval_ids.is_in(seed_ids.implode()).sum())
    if overlap:
        get_logger(__name__).warning(
            "%d eval samples are also in the seed set: eval results will be optimistic; remove them from %s",
            overlap, eval_input,
        )
    return {
        "seed": {key: seed[key] for key in _COUNTS},
        "eval": {key: held_out[key] for key in _COUNTS},
        "eval_in_seed": overlap,
    }
