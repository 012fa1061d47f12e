"""Gather whatever round outputs a project has (metrics, signal tables, flags, datasets); absent is not an error."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

METRIC_FILES = ("train", "score", "cluster", "judge", "select", "refine", "eval")
SIGNALS = {"scores.parquet": ("loss_pre", "loss_cur"), "knn.parquet": ("knn_sim",), "ratings.parquet": ("quality",)}
FLAGS = ("hard", "sparse", "low_quality")
TRAIN_LOSS = "live/plots/metrics/loss.tsv"
"""DVCLive's training loss by logging step, under a round's dir (tab-separated, columns `step` and `loss`; its
`train/loss.tsv` is the run's mean loss, one row at the end)."""


@dataclass
class RoundOutputs:
    """What exists of one round's outputs; a missing file leaves its entry None/empty."""

    number: int
    metrics: dict[str, dict | None] = field(default_factory=dict)
    signals: dict[str, list[float]] = field(default_factory=dict)
    flags: pl.DataFrame | None = None
    dataset: pl.DataFrame | None = None
    refine_log: pl.DataFrame | None = None
    train_loss: list[tuple[float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class ProjectOutputs:
    """All rounds 1..R+1 expected by params.yaml, plus any other round directory found."""

    root: Path
    rounds: list[RoundOutputs]
    seed: pl.DataFrame | None
    expected_rounds: int | None


def collect_project(root: str | Path = ".") -> ProjectOutputs:
    """Read every round's outputs under `root/data/r<n>/`."""
    root = Path(root)
    expected = _expected_rounds(root)
    found = {int(m.group(1)) for p in (root / "data").glob("r*") if (m := re.fullmatch(r"r(\d+)", p.name))}
    numbers = sorted((found - {0}) | set(range(1, (expected or 0) + 2)))
    seed, _ = _read_parquet(root / "data/r0/dataset.parquet")
    return ProjectOutputs(root, [_collect_round(root, n) for n in numbers], seed, expected)


def _expected_rounds(root: Path) -> int | None:
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
        rounds = params.get("loop", {}).get("rounds")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return rounds if isinstance(rounds, int) and rounds >= 1 else None


def _collect_round(root: Path, number: int) -> RoundOutputs:
    folder = root / f"data/r{number}"
    out = RoundOutputs(number)
    for name in METRIC_FILES:
        out.metrics[name] = _read_json(folder / f"{name}.json", out.problems)
    for file, columns in SIGNALS.items():
        frame, problem = _read_parquet(folder / file)
        if problem:
            out.problems.append(problem)
        for column in columns:
            if frame is not None and column in frame.columns:
                out.signals[column] = frame[column].cast(pl.Float64).to_list()
    out.flags, problem = _read_parquet(folder / "flags.parquet")
    out.dataset, problem_dataset = _read_parquet(folder / "dataset.parquet")
    out.refine_log, problem_log = _read_parquet(folder / "refine_log.parquet")
    out.problems += [p for p in (problem, problem_dataset, problem_log) if p]
    out.train_loss = _read_curve(folder / TRAIN_LOSS, "loss", out.problems)
    return out


def _read_curve(path: Path, column: str, problems: list[str]) -> list[tuple[float, float]]:
    """(step, value) rows of a DVCLive metric TSV; absent is empty, unreadable is a problem."""
    if not path.exists():
        return []
    try:
        rows = pl.read_csv(path, separator="\t").select(pl.col("step", column).cast(pl.Float64)).drop_nulls().rows()
    except (OSError, pl.exceptions.PolarsError) as exc:
        problems.append(f"{path}: unreadable ({exc})")
        return []
    return [(step, value) for step, value in rows if math.isfinite(value)]


def _read_json(path: Path, problems: list[str]) -> dict | None:
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{path}: unreadable ({exc})")
        return None
    return loaded if isinstance(loaded, dict) else {"value": loaded}


def _read_parquet(path: Path) -> tuple[pl.DataFrame | None, str | None]:
    if not path.exists():
        return None, None
    try:
        return pl.read_parquet(path), None
    except (OSError, pl.exceptions.PolarsError) as exc:
        return None, f"{path}: unreadable ({exc})"


def flatten(metrics: dict | None, prefix: str = "") -> dict[str, Any]:
    """Nested metrics as dotted keys -> leaf values (lists kept as they are)."""
    flat: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def numeric(value: Any) -> float | None:
    """`value` as a finite float, or None (bools and non-numbers are not numeric here)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def thresholds(select_metrics: dict | None) -> dict[str, dict[str, float]]:
    """Per signal, label -> value of the select.json entries whose key names a threshold and the signal.

    select.json holds `thresholds.<flag>.<signal>` (and `sigma_rule_thresholds...`); equal values are shown once.
    """
    found: dict[str, dict[str, float]] = {}
    for key, value in sorted(flatten(select_metrics).items(), key=lambda item: len(item[0])):
        number = numeric(value)
        if number is None or "threshold" not in key.lower():
            continue
        label = key.replace("sigma_rule_thresholds.", "σ-rule ").replace("thresholds.", "")
        for signal in ("loss_pre", "loss_cur", "knn_sim", "quality"):
            if signal in key and number not in found.get(signal, {}).values():
                found.setdefault(signal, {})[label] = number
    return found


def rated_by(metrics: dict) -> str:
    """Who gave the ratings recorded in a judge metrics dict: `SIMULATED judge (openai)`, `<model> (openai)` or
    `the round model (<mode>)`."""
    mode = metrics.get("mode", "?")
    if mode != "openai":
        return f"the round model ({mode})"
    usage = metrics.get("teacher_usage") if isinstance(metrics.get("teacher_usage"), dict) else {}
    who = "SIMULATED judge" if usage.get("simulated") else str(usage.get("model", "the teacher endpoint"))
    return f"{who} ({mode})"
