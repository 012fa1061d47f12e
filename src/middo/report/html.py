"""One self-contained HTML report (inline CSS and SVG, no scripts) from whatever round outputs exist."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

from middo.outputs import check_file_target
from middo.report import svg
from middo.report.collect import ProjectOutputs, RoundOutputs, collect_project, flatten, numeric
from middo.report.diff import diff_datasets
from middo.report.markup import missing, table
from middo.report.rounds import other_metrics, round_section, training

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1140px;color:#222}
h1{font-size:24px}h2{border-bottom:2px solid #3b6ea5;padding-bottom:4px;margin-top:32px}h3{margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eef2f7}.missing{color:#a33;font-style:italic}.charts{display:flex;flex-wrap:wrap;gap:12px}
.example{display:grid;grid-template-columns:1fr 1fr;gap:8px;margin:8px 0 16px;font-size:13px}
.example pre{white-space:pre-wrap;background:#f6f6f6;border:1px solid #ddd;padding:6px;margin:0;max-height:220px;
overflow:auto}.note{color:#666;font-size:13px}.warning{border:2px solid #c00;background:#fee;padding:4px 8px}
"""
HEADLINE = re.compile(r"nll|loss|perplexity|exact|match|acc|score", re.IGNORECASE)
"""Eval metrics charted by round; the others (counts) are only listed in the table."""


def build_report(root: str | Path = ".") -> str:
    """The report of the project at `root` as one HTML string."""
    project = collect_project(root)
    parts = [f"<h1>middo report: {escape(str(Path(root).resolve().name))}</h1>", _summary(project)]
    parts.append(_eval_section(project))
    previous = project.seed
    for outputs in project.rounds:
        if _is_final(project, outputs):
            parts.append(_final_section(outputs))
            continue
        parts.append(round_section(outputs, previous))
        previous = outputs.dataset
    head = f'<meta charset="utf-8"><title>middo report</title><style>{CSS}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>{''.join(parts)}</body></html>\n"


def write_report(root: str | Path = ".", output: str | Path = "report.html") -> Path:
    """Build the report of `root` and write it to `output`."""
    output = check_file_target(output)
    output.write_text(build_report(root), encoding="utf-8")
    return output


def _is_final(project: ProjectOutputs, outputs: RoundOutputs) -> bool:
    return project.expected_rounds is not None and outputs.number == project.expected_rounds + 1


def _final_section(outputs: RoundOutputs) -> str:
    note = "The model users take away: the base model trained on the last round's dataset (train and eval only)."
    head = f'<h2>Final model (round {outputs.number})</h2><p class="note">{note}</p>'
    return head + training(outputs) + other_metrics(outputs, ("train", "eval"), True)


def _summary(project: ProjectOutputs) -> str:
    expected = project.expected_rounds
    note = f"params.yaml: loop.rounds = {expected}" if expected else "params.yaml: loop.rounds not found"
    rows = [("0 (seed)", None if project.seed is None else project.seed.height, "", "", "")]
    previous = project.seed
    for outputs in project.rounds:
        if _is_final(project, outputs):
            continue
        size = None if outputs.dataset is None else outputs.dataset.height
        if previous is not None and outputs.dataset is not None:
            counts = diff_datasets(previous, outputs.dataset).counts()
            rows.append((outputs.number, size, counts["kept"], counts["replaced"], counts["added"]))
        else:
            rows.append((outputs.number, size, None, None, None))
        previous = outputs.dataset
    sizes = table(rows, ("dataset D(r)", "samples", "kept", "replaced", "added"))
    return f'<h2>Datasets by round</h2><p class="note">{escape(note)}</p>{sizes}'


def _eval_section(project: ProjectOutputs) -> str:
    evals = [(outputs.number, outputs.metrics.get("eval")) for outputs in project.rounds]
    baseline = _baseline_eval(project.root)
    evals = [(0, baseline), *evals] if baseline is not None else evals
    numbers = [number for number, _ in evals]
    series: dict[str, dict[int, float | None]] = {}
    for number, metrics in evals:
        for key, value in flatten(metrics).items():
            if numeric(value) is not None:
                series.setdefault(key, {})[number] = numeric(value)
    if not series:
        return "<h2>Held-out evaluation by round</h2>" + missing("eval metrics (data/r<n>/eval.json)")
    # per-group breakdowns (e.g. exact_match_by_family.*) go to the table only: one chart each would drown the page
    own = {key: points for key, points in series.items() if not key.startswith("tasks.")}
    headline = {key: points for key, points in own.items() if HEADLINE.search(key) and "_by_" not in key} or own
    charts = "".join(svg.lines_by_round({key: points}, numbers, key) for key, points in sorted(headline.items()))
    charts += "".join(svg.lines_by_round(points, numbers, f"lm-eval {task}")
                      for task, points in sorted(_task_series(series).items()))  # fmt: skip
    rows = [(key, *[points.get(n) for n in numbers]) for key, points in sorted(series.items())]
    values = table(rows, ("metric", *[f"round {n}" for n in numbers]))
    note = ("Round 0 is the base model M0; round 1 the model trained on the seed set; the last round the model "
            "trained on the final dataset. `tasks.*` are lm-evaluation-harness tasks (each with its stderr).")
    return f'<h2>Held-out evaluation by round</h2><p class="note">{note}</p><div class="charts">{charts}</div>{values}'


def _task_series(series: dict[str, dict[int, float | None]]) -> dict[str, dict[str, dict[int, float | None]]]:
    """lm-eval task -> metric -> points by round, from the `tasks.<task>.<metric>` keys (no stderr, no counts)."""
    by_task: dict[str, dict[str, dict[int, float | None]]] = {}
    for key, points in series.items():
        if key.startswith("tasks.") and not key.endswith(("_stderr", ".samples")):
            task, _, metric = key.removeprefix("tasks.").rpartition(".")
            by_task.setdefault(task, {})[metric] = points
    return by_task


def _baseline_eval(root: Path) -> dict | None:
    """The base model's metrics (`data/r0/eval.json`, stage eval-0), or None when absent or unreadable."""
    path = root / "data/r0/eval.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None
