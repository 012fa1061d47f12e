"""The summary `middo demo` prints after a run: planted defects found per signal, eval@1 vs the final model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl

from middo.demo.audit import AUDIT_KINDS, audit_counts
from middo.demo.findings import (
    PLANTED_KINDS,
    SIGNALS,
    eval_accuracy,
    eval_metrics,
    planted_by_flag,
    round_table,
    rounds_run,
    rounds_with,
    signal_findings,
)
from middo.report.collect import rated_by


def demo_summary(project: str | Path) -> dict:
    """Findings per refinement round, eval accuracy per round, and teacher usage from `refine.json` files."""
    project = Path(project)
    evals = rounds_run(project)
    refine_rounds = rounds_with(project, "flags.parquet")
    summary: dict = {"rounds": {}, "eval": {r: eval_accuracy(project, r) for r in evals}}
    for r in refine_rounds:
        table = round_table(project, r)
        summary["rounds"][r] = {"signals": signal_findings(table), "planted_by_flag": planted_by_flag(table)}
    summary["teacher"] = {r: teacher_usage(project, r) for r in refine_rounds}
    summary["judge"] = {r: judge_kind(project, r) for r in refine_rounds}
    summary["defects"] = dataset_defects(project)
    summary["eval_base"] = eval_accuracy(project, 0)
    summary["tasks"] = {r: eval_metrics(project, r).get("tasks", {}) for r in [0, *evals]}
    summary["eval_first"] = summary["eval_final"] = math.nan
    if evals:
        summary["eval_first"], summary["eval_final"] = summary["eval"][evals[0]], summary["eval"][evals[-1]]
    return summary


def dataset_defects(project: str | Path) -> dict[int, dict[str, int]]:
    """Round -> `audit_counts` of D(r) (`data/r<r>/dataset.parquet`, D(0) included), for every round written."""
    found = {}
    for r in rounds_with(project, "dataset.parquet"):
        frame = pl.read_parquet(Path(project) / "data" / f"r{r}" / "dataset.parquet", columns=["messages"])
        found[r] = audit_counts(frame["messages"].to_list())
    return found


def judge_kind(project: str | Path, r: int) -> str:
    """Who rated round `r` (`rated_by` of its `judge.json`)."""
    path = Path(project) / "data" / f"r{r}" / "judge.json"
    if not path.exists():
        return "unknown (no judge.json)"
    return rated_by(json.loads(path.read_text(encoding="utf-8")))


def teacher_usage(project: str | Path, r: int) -> dict:
    """Teacher requests and tokens, and children accepted, of round `r`'s refine stage (empty without refine.json)."""
    path = Path(project) / "data" / f"r{r}" / "refine.json"
    if not path.exists():
        return {}
    metrics = json.loads(path.read_text(encoding="utf-8"))
    usage = metrics.get("teacher_usage") or {}
    found = {key: usage[key] for key in ("requests", "prompt_tokens", "completion_tokens", "failed") if key in usage}
    total = metrics.get("total") or {}
    found |= {f"children_{key}": total[key] for key in ("requested", "accepted") if key in total}
    return found


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_summary(summary: dict) -> str:
    """Plain-text tables of `demo_summary`."""
    lines = []
    for r, found in summary["rounds"].items():
        lines.append(f"round {r}: flags vs planted defects (seed samples)")
        lines.append(f"  {'flag':<12}" + "".join(f"{k:>13}" for k in PLANTED_KINDS))
        for flag, counts in found["planted_by_flag"].items():
            lines.append(f"  {flag:<12}" + "".join(f"{counts[k]:>13}" for k in PLANTED_KINDS))
        lines.append(f"  {'signal':<11}{'target':<26}{'AUROC':>7}{'precision':>11}{'recall':>8}{'flagged':>9}")
        for signal in SIGNALS:
            s = found["signals"][signal.name]
            lines.append(f"  {signal.name:<11}{s['target']:<26}{_fmt(s['auroc']):>7}{_fmt(s['precision']):>11}"
                         f"{_fmt(s['recall']):>8}{s['flagged']:>9}")
        if summary.get("judge", {}).get(r):
            lines.append(f"  ratings (quality signal) by: {summary['judge'][r]}")
        usage = summary["teacher"].get(r) or {}
        if usage:
            lines.append("  teacher (SIMULATED if teacher.backend is sim): "
                         + ", ".join(f"{k} {v}" for k, v in usage.items()))
    if summary.get("defects"):
        lines.append("defective samples by recomputing each task (ground truth): "
                     + " -> ".join(f"D{r} {c['defective']}/{c['total']}" for r, c in summary["defects"].items()))
        for r, counts in summary["defects"].items():
            lines.append(f"  D{r}: " + ", ".join(f"{kind} {counts[kind]}" for kind in AUDIT_KINDS))
    lines += harness_lines(summary.get("tasks", {}))
    if summary["eval"]:
        lines.append("held-out exact match: " + ", ".join(f"eval@{r} {_fmt(v)}" for r, v in summary["eval"].items()))
        lines.append(f"base model M0 (eval@0) {_fmt(summary.get('eval_base', math.nan))}, seed model "
                     f"(eval@{min(summary['eval'])}) {_fmt(summary['eval_first'])} -> final model "
                     f"(eval@{max(summary['eval'])}) {_fmt(summary['eval_final'])}")
    return "\n".join(lines)


def harness_lines(tasks: dict[int, dict]) -> list[str]:
    """The lm-eval tasks per round: each task's headline metric (exact_match, acc_norm, acc, else its first) with
    its stderr and sample count."""
    lines = []
    for r, by_task in tasks.items():
        for task, metrics in sorted(by_task.items()):
            names = [k for k in metrics if not k.endswith("_stderr") and k != "samples"]
            name = next((k for k in ("exact_match", "acc_norm", "acc") if k in metrics), names[0] if names else None)
            if name is not None:
                stderr = metrics.get(f"{name}_stderr")
                spread = f" ± {stderr:.3f}" if isinstance(stderr, float) else ""
                lines.append(f"lm-eval eval@{r} {task}: {name} {_fmt(metrics[name])}{spread} "
                             f"({metrics.get('samples', '?')} samples)")
    return lines
