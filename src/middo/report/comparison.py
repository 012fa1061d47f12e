"""Two revisions or experiments of one project side by side: the params that differ, and per round the datasets,
flags, refine and eval figures of each, with how many samples differ between them."""

from __future__ import annotations

import io
import json
from html import escape
from pathlib import Path

import polars as pl
import yaml

from middo.errors import InputError
from middo.outputs import check_file_target
from middo.report.collect import FLAGS, flatten, numeric
from middo.report.compare import compare
from middo.report.markup import missing, table
from middo.report.revisions import Side

HEADLINE_EVAL = ("exact_match", "nll")
"""Eval metrics shown per round; the full metrics stay in each revision's eval.json."""
TASK_HEADLINES = ("exact_match", "acc", "acc_norm", "exact_match_strict-match", "prompt_level_strict_acc", "pass@1")
"""Metrics of lm-eval tasks (`tasks.<task>.<metric>` in eval.json) shown per round."""


def build_comparison(project: str | Path, revs: tuple[str | None, str | None]) -> str:
    """The comparison page (HTML body parts) of `project` at two revisions (None: the workspace)."""
    sides = (Side(Path(project), revs[0]), Side(Path(project), revs[1]))
    params = [_params(side) for side in sides]
    labels = tuple(escape(side.label) for side in sides)
    parts = [f"<h2>Comparison: {labels[0]} vs {labels[1]}</h2>", _params_table(params, labels)]
    last = max(_rounds(p) for p in params) + 1
    parts += [_round_table(sides, r, labels) for r in range(0, last + 1)]
    return "".join(parts)


def write_comparison(project: str | Path, revs: tuple[str | None, str | None], output: str | Path) -> Path:
    """Write the comparison of `project` at two revisions as one self-contained HTML file."""
    from middo.report.html import CSS

    head = f'<meta charset="utf-8"><title>middo comparison</title><style>{CSS}</style>'
    body = f"<h1>middo comparison: {escape(Path(project).resolve().name)}</h1>" + build_comparison(project, revs)
    output = check_file_target(output)
    output.write_text(f"<!DOCTYPE html>\n<html><head>{head}</head><body>{body}</body></html>\n", encoding="utf-8")
    return output


def _params(side: Side) -> dict:
    return flatten(yaml.safe_load(side.read_bytes("params.yaml", "the project has no params.yaml")) or {})


def _rounds(params: dict) -> int:
    rounds = params.get("loop.rounds")
    return rounds if isinstance(rounds, int) and rounds >= 1 else 1


def _params_table(params: list[dict], labels: tuple[str, str]) -> str:
    keys = sorted(key for key in params[0].keys() | params[1].keys() if params[0].get(key) != params[1].get(key))
    if not keys:
        return '<p class="note">Both sides have the same params.</p>'
    rows = [(key, json.dumps(params[0].get(key)), json.dumps(params[1].get(key))) for key in keys]
    return "<h3>Params that differ</h3>" + table(rows, ("param", *labels))


def _round_table(sides: tuple[Side, Side], r: int, labels: tuple[str, str]) -> str:
    figures = [_figures(side, r) for side in sides]
    names = sorted(figures[0].keys() | figures[1].keys(), key=_order)
    if not names:
        return f"<h3>Round {r}</h3>" + missing(f"data/r{r}/ at both revisions")
    rows = [(name, figures[0].get(name), figures[1].get(name)) for name in names]
    return f"<h3>Round {r}</h3>" + table(rows, ("figure", *labels)) + _differences(sides, r)


def _figures(side: Side, r: int) -> dict[str, float | int]:
    figures: dict[str, float | int] = {}
    if (dataset := side.read_optional(f"data/r{r}/dataset.parquet")) is not None:
        figures["samples in D(r)"] = pl.read_parquet(io.BytesIO(dataset), columns=["id"]).height
    if r >= 1 and (flag_bytes := side.read_optional(f"data/r{r}/flags.parquet")) is not None:
        flags = pl.read_parquet(io.BytesIO(flag_bytes))
        figures |= {f"flagged {name}": int(flags[name].sum()) for name in FLAGS}
    refine = _metrics(side, f"data/r{r}/refine.json")
    for key in ("total.accepted", "teacher_usage.requests"):
        if numeric(refine.get(key)) is not None:
            figures[f"refine {key}"] = refine[key]
    evaluation = _metrics(side, f"data/r{r}/eval.json")
    figures |= {f"eval {key}": evaluation[key] for key in HEADLINE_EVAL if numeric(evaluation.get(key)) is not None}
    tasks = {key: value for key, value in evaluation.items() if _is_task_headline(key) and numeric(value) is not None}
    return figures | {f"eval {key}": value for key, value in tasks.items()}


def _is_task_headline(key: str) -> bool:
    """`tasks.<task>.<metric>` for a common headline metric of lm-eval tasks (stderr and breakdowns left out)."""
    return key.startswith("tasks.") and key.rpartition(".")[2] in TASK_HEADLINES


def _metrics(side: Side, path: str) -> dict:
    data = side.read_optional(path)
    return {} if data is None else flatten(json.loads(data))


def _order(name: str) -> tuple[int, str]:
    prefixes = ("samples", "flagged", "refine", "eval")
    return next((i for i, prefix in enumerate(prefixes) if name.startswith(prefix)), len(prefixes)), name


def _differences(sides: tuple[Side, Side], r: int) -> str:
    try:
        comparison = compare(sides[0], str(r), sides[1], str(r))
    except InputError as exc:
        return f'<p class="note">Samples: not compared ({escape(str(exc))}).</p>'
    counts = ", ".join(f"{name} {count}" for name, count in comparison.diff.counts().items())
    flags = "" if comparison.flag_changes is None else f"; flags changed on {len(comparison.flag_changes)} samples"
    command = " ".join(["middo diff", str(r), str(r), *(f"--rev {side.rev}" for side in sides if side.rev)])
    return f'<p class="note">Samples of D({r}), {escape(counts)}{escape(flags)} (<code>{escape(command)}</code>).</p>'
