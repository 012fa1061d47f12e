"""Pure metrics that score the signals against the planted defects: AUROC, precision/recall, ranks, spread."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` (higher = more likely positive) against `labels`.

    The Mann-Whitney statistic with ties counted half; NaN scores are left out. NaN when either class is empty.
    """
    values = np.asarray(scores, dtype=float)
    truth = np.asarray(labels, dtype=bool)
    if values.shape != truth.shape:
        raise ValueError(f"auroc: {values.shape[0]} scores but {truth.shape[0]} labels")
    keep = ~np.isnan(values)
    values, truth = values[keep], truth[keep]
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(values)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def percentile_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks scaled to (0, 1]; NaN stays NaN."""
    values = np.asarray(values, dtype=float)
    out = np.full(len(values), math.nan)
    keep = ~np.isnan(values)
    if keep.any():
        out[keep] = average_ranks(values[keep]) / keep.sum()
    return out


def precision_recall(flags: Sequence[bool], labels: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of boolean `flags` against `labels` (NaN when undefined), with the counts."""
    flagged = np.asarray(flags, dtype=bool)
    truth = np.asarray(labels, dtype=bool)
    hits = int((flagged & truth).sum())
    return {
        "precision": hits / flagged.sum() if flagged.sum() else math.nan,
        "recall": hits / truth.sum() if truth.sum() else math.nan,
        "flagged": int(flagged.sum()),
        "targets": int(truth.sum()),
        "hits": hits,
    }


def mean_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and population standard deviation of the finite values, with their count."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}
