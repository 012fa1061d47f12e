"""select.json (counts, overlaps, thresholds, μ/σ, NaN counts) and the histogram plot table."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl

from middo.selection.config import SelectConfig
from middo.selection.rules import COLUMNS, Selection

PLOT_BINS = 20


def selection_metrics(selection: Selection, config: SelectConfig) -> dict:
    """Counts per flag and of each overlap, with the statistics and thresholds that produced them."""
    flags = selection.flags
    hard, sparse, low = (flags[name].to_numpy() for name in ("hard", "sparse", "low_quality"))
    summary = {
        "mode": config.mode,
        "params": dataclasses.asdict(config),
        "n_samples": flags.height,
        "counts": {
            "hard": int(hard.sum()),
            "sparse": int(sparse.sum()),
            "low_quality": int(low.sum()),
            "any": int((hard | sparse | low).sum()),
            "none": int((~(hard | sparse | low)).sum()),
        },
        "overlaps": {
            "hard_and_sparse": int((hard & sparse).sum()),
            "hard_and_low_quality": int((hard & low).sum()),
            "sparse_and_low_quality": int((sparse & low).sum()),
            "all_three": int((hard & sparse & low).sum()),
        },
        "stats": {name: dataclasses.asdict(stat) for name, stat in selection.stats.items()},
        "nan_counts": {name: stat.n_nan for name, stat in selection.stats.items()},
        "nan_ratings": selection.stats["quality"].n_nan,
        "no_spread": no_spread_columns(selection),
        "unusable_signals": unusable_signals(selection),
        "thresholds": selection.thresholds,
    }
    if config.mode != "sigma":  # what the σ-rule would have used (the random control draws its counts)
        summary["sigma_rule_thresholds"] = selection.sigma_thresholds
    return summary


def unusable_signals(selection: Selection) -> dict[str, str]:
    """Signal columns without a single finite value, and why: their flag flags nothing this round."""
    out = {}
    for name, stat in selection.stats.items():
        if stat.n_nan == selection.flags.height and selection.flags.height:
            why = "no finite value" + (": the judge dropped it (judge.on_unusable: drop) or rated nothing; see "
                                       "judge.json `health`" if name == "quality" else "")
            out[name] = why
    return out


def no_spread_columns(selection: Selection) -> list[str]:
    """Signal columns whose σ counts as 0 (`rules.SIGMA_RTOL`): the flags that read them flag nothing."""
    return [name for name, stat in selection.stats.items() if stat.std == 0]


def histogram_table(selection: Selection, bins: int = PLOT_BINS) -> pl.DataFrame:
    """Long table per signal column: bin edges, samples per bin, flagged samples per bin, and the threshold."""
    rows = []
    for flag, names in COLUMNS.items():
        flagged = selection.flags[flag].to_numpy()
        for name in names:
            values = selection.columns[name]
            finite = np.isfinite(values)
            if not finite.any():
                continue
            edges = np.histogram_bin_edges(values[finite], bins=bins)
            counts, _ = np.histogram(values[finite], bins=edges)
            hits, _ = np.histogram(values[finite & flagged], bins=edges)
            threshold = selection.thresholds[flag].get(name, math.nan)
            for low, high, count, hit in zip(edges[:-1], edges[1:], counts, hits, strict=True):
                rows.append((name, flag, float(low), float(high), int(count), int(hit), threshold))
    schema = {"signal": pl.Utf8, "flag": pl.Utf8, "bin_low": pl.Float64, "bin_high": pl.Float64,
              "count": pl.Int64, "flagged": pl.Int64, "threshold": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")
