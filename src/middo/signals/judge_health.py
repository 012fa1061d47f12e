"""Whether the judge's quality signal is usable: not mostly NaN, not near-constant; what the stage does if not.

Measured on the ratings table and the judge metrics; the verdict goes into judge.json under `health`. An unusable
signal fails the stage (`judge.on_unusable: fail`, the default) with what was measured and what to do, or is
dropped (`drop`): `quality` becomes NaN for every sample, so select flags nothing `low_quality`, and every output
that reads it says so.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from middo.errors import MiddoError
from middo.signals.config import JudgeConfig

MODE_ADVICE = ("judge.mode `openai` with a stronger judge behind the teacher section; `logits` only with a round "
               "model that answers a rating question with a number (judge.json's score_mass_mean well above "
               "judge.min_score_mass; SmolLM2-135M-Instruct rating itself puts 0.009 on the score tokens, and in "
               "`generate` mode answers in words)")


class JudgeFailure(MiddoError):
    """The quality signal is unusable (too many NaN ratings, or too little spread) and `judge.on_unusable` is
    `fail`."""


def _nan_problem(metrics: dict, max_rate: float) -> str | None:
    nan, total = metrics["nan_ratings"], metrics["ratings"]
    if not nan or nan <= max_rate * total:
        return None
    why = [f"{name.replace('_', ' ')}: {metrics[name]}" for name in ("failed_requests", "parse_failures",
                                                                    "low_score_mass") if metrics.get(name)]
    kinds = metrics.get("teacher_usage", {}).get("failures") or {}
    if kinds:
        why.append("request failures by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
    if "score_mass_mean" in metrics:
        why.append(f"mean score-token mass {metrics['score_mass_mean']:.4f}")
    return (f"{nan} of {total} ratings ({nan / total:.0%}) could not be read ({'; '.join(why) or 'NaN'}), above "
            f"judge.max_failure_rate = {max_rate:g}")


def _spread_problem(quality: np.ndarray, min_std: float) -> str | None:
    finite = quality[np.isfinite(quality)]
    if finite.size < 2:
        return None
    std = float(finite.std())
    if std >= min_std:
        return None
    return (f"quality is near-constant: std {std:.3f} on the 0-10 scale (min {finite.min():.2f}, max "
            f"{finite.max():.2f}), below judge.min_quality_std = {min_std:g}, so a σ-rule on it flags noise")


def signal_health(table: pl.DataFrame, metrics: dict, cfg: JudgeConfig) -> dict:
    """`{usable, problems, quality_std}` of the ratings in `table` and `metrics`."""
    quality = table["quality"].to_numpy()
    finite = quality[np.isfinite(quality)]
    problems = [p for p in (_nan_problem(metrics, cfg.max_failure_rate), _spread_problem(quality,
                                                                                           cfg.min_quality_std)) if p]
    return {"usable": not problems, "problems": problems,
            "quality_std": float(finite.std()) if finite.size else float("nan")}


def failure_message(health: dict, mode: str) -> str:
    """What the stage measured and what the user can do (judge.mode `mode`)."""
    rerun = ("fix the endpoint, model or prompts and re-run (replies already received are cached)" if mode == "openai"
             else "fix the model or prompts and re-run")
    return (f"the quality signal is unusable: {'; '.join(health['problems'])}. Nothing is written, so this round is "
            f"not recorded as done with a noise signal. Use {MODE_ADVICE}; or {rerun}. To go on without the quality "
            "signal (select then flags no sample low_quality), set judge.on_unusable: drop; to use the ratings as "
            "they are, raise judge.max_failure_rate (NaN ratings) or lower judge.min_quality_std (spread)")


def apply_health(table: pl.DataFrame, metrics: dict, cfg: JudgeConfig) -> pl.DataFrame:
    """Record `health` in `metrics`; raise JudgeFailure, or drop `quality` (NaN everywhere), when unusable."""
    health = signal_health(table, metrics, cfg)
    metrics["health"] = {**health, "dropped": False}
    if health["usable"]:
        return table
    if cfg.on_unusable == "fail":
        raise JudgeFailure(failure_message(health, cfg.mode))
    metrics["health"]["dropped"] = True
    return table.with_columns(pl.lit(float("nan"), dtype=pl.Float64).alias("quality"))
