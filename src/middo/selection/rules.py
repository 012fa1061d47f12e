"""Flags by the σ-rule, by a budget, or at random with the σ-rule's counts; one reason string per flag.

Every signal has a badness score (higher = worse) on the samples where its values are finite: `hard` uses
min(z_pre, z_cur) (both losses high), `sparse` −z(knn_sim), `low_quality` −z(quality), with z = (x − μ)/σ over
the finite values (population σ; `select.quality_std: sample` takes quality's sample σ). The σ-rule flags
score > m (written out on the raw values); a budget flags the worst fraction by score; the random control draws
the σ-rule's count uniformly. NaN values never flag. A column without spread (σ at rounding level, see
`SIGMA_RTOL`) flags nothing in any mode: no sample stands out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from middo.selection.config import SelectConfig

SIGNALS = {"hard": "complexity", "sparse": "diversity", "low_quality": "quality"}
"""Flag name -> signal name (the suffix of its `m_*` and `budget_*` params)."""
COLUMNS = {"hard": ("loss_pre", "loss_cur"), "sparse": ("knn_sim",), "low_quality": ("quality",)}
SIGMA_RTOL = 1e-6
"""σ ≤ SIGMA_RTOL · max(|μ|, SIGMA_FLOOR) counts as 0. The mean of a constant column is off by an ulp, so its σ is
about 1e-16·|μ|, not 0, and `v < μ − m·σ` held for every row when m < 1. The signals are O(1) quantities (losses
in nats, cosines, 0-10 ratings) computed in float32, whose relative precision is 1.2e-7: equal values computed in
different batches differ by about that much. A spread below 1e-6 of the column's scale is rounding, not a difference
between samples, and real spreads are many orders of magnitude larger."""
SIGMA_FLOOR = 1.0
"""Scale floor of the epsilon: a column centred near 0 (|μ| < 1) uses 1e-6 absolute, in the signal's own units,
rather than a tolerance that shrinks with |μ| and would turn rounding noise around 0 into spread."""
TIE_RTOL = 1e-12
"""A value within TIE_RTOL · max(|μ|, σ, SIGMA_FLOOR) of its σ-rule threshold is at it, not beyond it, and does
not flag (the rule is strict). Rounding in μ and σ is far below this, and exact ties are common: with two values,
μ − σ is the smaller one exactly (population σ), and whether float64 put it a hair above or below decided its
flag."""


@dataclass(frozen=True)
class Stat:
    """Population mean and std over the finite values of one column, and how many were NaN/missing; `std` is 0
    when the column has no spread beyond rounding (`SIGMA_RTOL`)."""

    mean: float
    std: float
    n_nan: int


@dataclass
class FlagResult:
    """One flag over all rows: the mask, a reason per flagged row, and the thresholds that decided it."""

    mask: np.ndarray
    reasons: list[str | None]
    thresholds: dict[str, float]


def column_stat(values: np.ndarray, ddof: int = 0) -> Stat:
    """μ and σ (`ddof` 0: population, 1: sample) over the finite values, σ at rounding level as 0; NaN if there
    are none. A sample σ of a single value is 0 (nothing stands out), as a population σ is."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Stat(math.nan, math.nan, int(values.size))
    mean = float(finite.mean())
    std = float(finite.std(ddof=ddof)) if finite.size > ddof else 0.0
    if std <= SIGMA_RTOL * max(abs(mean), SIGMA_FLOOR):
        std = 0.0
    return Stat(mean, std, int(values.size - finite.size))


def no_spread(flag: str, stats: dict[str, Stat]) -> bool:
    """True when a column of `flag` has σ = 0: its values are equal, so nothing can stand out and nothing flags."""
    return any(stats[name].std == 0 for name in COLUMNS[flag])


def zscore(values: np.ndarray, stat: Stat) -> np.ndarray:
    """(x − μ)/σ; 0 where σ is 0 (nothing stands out), NaN where x is NaN."""
    if not stat.std > 0:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - stat.mean) / stat.std


def badness(flag: str, columns: dict[str, np.ndarray], stats: dict[str, Stat]) -> np.ndarray:
    """Higher is worse; NaN where the flag cannot be decided."""
    if flag == "hard":
        pre, cur = (zscore(columns[name], stats[name]) for name in COLUMNS["hard"])
        return np.minimum(pre, cur)
    (name,) = COLUMNS[flag]
    return -zscore(columns[name], stats[name])


def sigma_flag(flag: str, m: float, columns: dict[str, np.ndarray], stats: dict[str, Stat]) -> FlagResult:
    """The σ-rule on the raw values, with a reason naming each value and its threshold."""
    names = COLUMNS[flag]
    sign = 1.0 if flag == "hard" else -1.0  # losses flag high, similarity and quality flag low
    thresholds = {name: stats[name].mean + sign * m * stats[name].std for name in names}
    mask = np.full(len(columns[names[0]]), not no_spread(flag, stats))
    for name in names:
        values = np.nan_to_num(columns[name], nan=-sign * np.inf)  # NaN never passes a threshold
        stat = stats[name]
        beyond = thresholds[name] + sign * TIE_RTOL * max(abs(stat.mean), stat.std, SIGMA_FLOOR)
        mask &= values > beyond if sign > 0 else values < beyond
    op = ">" if sign > 0 else "<"
    reasons = _reasons(mask, lambda i: f"{flag}: " + " and ".join(
        f"{n} {columns[n][i]:.4g} {op} {thresholds[n]:.4g}" for n in names))
    return FlagResult(mask, reasons, thresholds)


def budget_flag(flag: str, fraction: float, columns: dict[str, np.ndarray], stats: dict[str, Stat],
                ids: pl.Series) -> FlagResult:
    """Flag round(fraction · n_finite) samples with the worst scores (ties broken by id)."""
    score = badness(flag, columns, stats)
    valid = np.flatnonzero(np.isfinite(score))
    count = 0 if no_spread(flag, stats) else math.floor(fraction * valid.size + 0.5)
    ranked = pl.DataFrame({"row": valid, "badness": score[valid], "id": ids.gather(valid)})
    order = ranked.sort(["badness", "id"], descending=[True, False]).head(count)["row"].to_numpy()
    mask = np.zeros(score.size, dtype=bool)
    mask[order] = True
    cutoff = float(score[order[-1]]) if order.size else math.nan
    thresholds = {"score_cutoff": cutoff}
    if flag != "hard" and order.size:
        (name,) = COLUMNS[flag]
        thresholds[name] = float(columns[name][order].max())
    label = f"in the worst {fraction:.0%} (score {{:.3g}} >= cutoff {cutoff:.3g})"
    reasons = _reasons(mask, lambda i: f"{flag}: {_values(flag, columns, i)} " + label.format(score[i]))
    return FlagResult(mask, reasons, thresholds)


def random_flag(flag: str, count: int, columns: dict[str, np.ndarray], stats: dict[str, Stat], seed: int):
    """Flag `count` samples drawn uniformly (seeded) among those where the flag is decidable."""
    score = badness(flag, columns, stats)
    valid = np.flatnonzero(np.isfinite(score))
    rng = np.random.default_rng([seed, list(SIGNALS).index(flag)])
    chosen = rng.choice(valid, size=min(count, valid.size), replace=False) if valid.size else valid
    mask = np.zeros(score.size, dtype=bool)
    mask[chosen] = True
    reasons = _reasons(mask, lambda i: f"{flag}: {_values(flag, columns, i)} drawn at random ({count} to match the "
                                       "σ-rule count)")
    return FlagResult(mask, reasons, {})


def _reasons(mask: np.ndarray, explain) -> list[str | None]:
    """`explain(row)` for the flagged rows, None elsewhere (strings are made only where needed)."""
    reasons: list[str | None] = [None] * mask.size
    for row in np.flatnonzero(mask):
        reasons[row] = explain(row)
    return reasons


def _values(flag: str, columns: dict[str, np.ndarray], row: int) -> str:
    return " and ".join(f"{name} {columns[name][row]:.4g}" for name in COLUMNS[flag])


@dataclass
class Selection:
    """The flags table plus what the metrics and plots are made of."""

    flags: pl.DataFrame
    stats: dict[str, Stat]
    thresholds: dict[str, dict[str, float]]
    sigma_thresholds: dict[str, dict[str, float]]
    columns: dict[str, np.ndarray]


def select_flags(joined: pl.DataFrame, config: SelectConfig) -> Selection:
    """Flag every row of `joined` (columns id, loss_pre, loss_cur, knn_sim, quality) as `config.mode` says."""
    names = [name for group in COLUMNS.values() for name in group]
    columns = {name: joined[name].cast(pl.Float64).fill_null(math.nan).to_numpy() for name in names}
    stats = {name: column_stat(values, config.ddof(name)) for name, values in columns.items()}
    ids = joined["id"]
    results, sigma = {}, {}
    for flag, signal in SIGNALS.items():
        rule = sigma_flag(flag, config.multiplier(signal), columns, stats)
        sigma[flag] = rule.thresholds
        if config.mode == "sigma":
            results[flag] = rule
        elif config.mode == "budget":
            results[flag] = budget_flag(flag, config.budget(signal), columns, stats, ids)
        else:
            results[flag] = random_flag(flag, int(rule.mask.sum()), columns, stats, config.seed)
    flags = pl.DataFrame(
        {"id": joined["id"], **{flag: pl.Series(r.mask, dtype=pl.Boolean) for flag, r in results.items()},
         **{f"_{flag}": pl.Series(r.reasons, dtype=pl.Utf8) for flag, r in results.items()}}
    ).select("id", *SIGNALS, reasons=pl.concat_list([f"_{flag}" for flag in SIGNALS]).list.drop_nulls())
    thresholds = {flag: r.thresholds for flag, r in results.items()}
    return Selection(flags, stats, thresholds, sigma, columns)
