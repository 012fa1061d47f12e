"""The `prepare` stage: ingest the seed set into D(0) and the eval set, and count what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from middo.data.config import DataConfig
from middo.data.ingest import ingest
from middo.log import get_logger

_COUNTS = ("rows", "samples", "duplicates", "skipped", "skipped_total", "formats")


def prepare(
    config: DataConfig, seed_inputs: list[str], eval_input: str, output: str | Path, eval_output: str | Path
) -> dict[str, Any]:
    """Write D(0) and the eval dataset; return metrics (counts per set, eval samples also in the seed set)."""
    seed = ingest(seed_inputs, output, config.format, config.source, config.on_error).to_dict()
    held_out = ingest([eval_input], eval_output, config.format, config.source, config.on_error).to_dict()
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
