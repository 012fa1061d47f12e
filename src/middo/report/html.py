"""One self-contained HTML report (inline CSS and SVG, no scripts) from whatever round outputs exist."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import polars as pl

from middo.report import svg
from middo.report.collect import FLAGS, ProjectOutputs, RoundOutputs, collect_project, flatten, numeric, thresholds
from middo.report.diff import diff_datasets
from middo.report.examples import Example, lineage_examples

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1140px;color:#222}
h1{font-size:24px}h2{border-bottom:2px solid #3b6ea5;padding-bottom:4px;margin-top:32px}h3{margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eef2f7}.missing{color:#a33;font-style:italic}.charts{display:flex;flex-wrap:wrap;gap:12px}
.example{display:grid;grid-template-columns:1fr 1fr;gap:8px;margin:8px 0 16px;font-size:13px}
.example pre{white-space:pre-wrap;background:#f6f6f6;border:1px solid #ddd;padding:6px;margin:0;max-height:220px;
overflow:auto}.note{color:#666;font-size:13px}
"""
EXAMPLES_PER_OP = 2
HEADLINE = re.compile(r"nll|loss|perplexity|exact|match|acc|score", re.IGNORECASE)
"""Eval metrics charted by round; the others (counts) are only listed in the table."""
PREVIEW_CHARS = 600


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
        parts.append(_round_section(outputs, previous))
        previous = outputs.dataset
    head = f'<meta charset="utf-8"><title>middo report</title><style>{CSS}</style>'
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>{''.join(parts)}</body></html>\n"


def write_report(root: str | Path = ".", output: str | Path = "report.html") -> Path:
    """Build the report of `root` and write it to `output`."""
    output = Path(output)
    output.write_text(build_report(root), encoding="utf-8")
    return output


def _missing(what: str) -> str:
    return f'<p class="missing">{escape(what)}: missing</p>'


def _table(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None:
        return '<span class="missing">missing</span>'
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _is_final(project: ProjectOutputs, outputs: RoundOutputs) -> bool:
    return project.expected_rounds is not None and outputs.number == project.expected_rounds + 1


def _final_section(outputs: RoundOutputs) -> str:
    note = "The model users take away: the base model trained on the last round's dataset (train and eval only)."
    head = f'<h2>Final model (round {outputs.number})</h2><p class="note">{note}</p>'
    return head + _other_metrics(outputs, ("train", "eval"), True)


def _other_metrics(outputs: RoundOutputs, names=("train", "score", "cluster", "judge", "select", "eval"),
                   open_: bool = False) -> str:
    rows = []
    for name in names:
        flat = flatten(outputs.metrics.get(name))
        if outputs.metrics.get(name) is None:
            rows.append((f"{name}.json", None))
        rows += [(f"{name}.{key}", value) for key, value in flat.items() if not isinstance(value, list)]
    state = " open" if open_ else ""
    return f"<details{state}><summary>stage metrics</summary>{_table(rows, ('metric', 'value'))}</details>"


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
    table = _table(rows, ("dataset D(r)", "samples", "kept", "replaced", "added"))
    return f'<h2>Datasets by round</h2><p class="note">{escape(note)}</p>{table}'


def _eval_section(project: ProjectOutputs) -> str:
    numbers = [outputs.number for outputs in project.rounds]
    series: dict[str, dict[int, float | None]] = {}
    for outputs in project.rounds:
        for key, value in flatten(outputs.metrics.get("eval")).items():
            if numeric(value) is not None:
                series.setdefault(key, {})[outputs.number] = numeric(value)
    if not series:
        return "<h2>Held-out evaluation by round</h2>" + _missing("eval metrics (data/r<n>/eval.json)")
    headline = {key: points for key, points in series.items() if HEADLINE.search(key)} or series
    charts = "".join(svg.lines_by_round({key: points}, numbers, key) for key, points in sorted(headline.items()))
    rows = [(key, *[points.get(n) for n in numbers]) for key, points in sorted(series.items())]
    table = _table(rows, ("metric", *[f"round {n}" for n in numbers]))
    note = "Round 1 is the model trained on the seed set; the last round is the model trained on the final dataset."
    return f'<h2>Held-out evaluation by round</h2><p class="note">{note}</p><div class="charts">{charts}</div>{table}'


def _round_section(outputs: RoundOutputs, previous: pl.DataFrame | None) -> str:
    parts = [f"<h2>Round {outputs.number}</h2>"]
    if all(value is None for value in outputs.metrics.values()) and outputs.dataset is None:
        parts.append(_missing(f"all outputs of round {outputs.number} (not run yet)"))
        return "".join(parts)
    parts += [_flags(outputs), _signals(outputs), _refine(outputs), _examples(outputs, previous)]
    parts.append(_other_metrics(outputs))
    if outputs.problems:
        parts.append("<h3>Unreadable files</h3><ul>" + "".join(f"<li>{escape(p)}</li>" for p in outputs.problems))
        parts.append("</ul>")
    return "".join(parts)


def _flags(outputs: RoundOutputs) -> str:
    if outputs.flags is None:
        return "<h3>Flags</h3>" + _missing("flags table (flags.parquet)")
    present = [name for name in FLAGS if name in outputs.flags.columns]
    totals = {name: float(outputs.flags[name].sum()) for name in present}
    combos: dict[str, float] = {}
    for row in outputs.flags.select(present).iter_rows():
        label = " + ".join(name for name, flag in zip(present, row, strict=True) if flag) or "none"
        combos[label] = combos.get(label, 0) + 1
    charts = svg.bars(totals, "samples per flag") + svg.bars(dict(sorted(combos.items())), "flag overlap")
    return f'<h3>Flags ({outputs.flags.height} samples)</h3><div class="charts">{charts}</div>'


def _signals(outputs: RoundOutputs) -> str:
    if not outputs.signals:
        return "<h3>Signals</h3>" + _missing("signal tables (scores, knn, ratings)")
    marks = thresholds(outputs.metrics.get("select"))
    charts = "".join(svg.histogram(values, name, marks.get(name)) for name, values in outputs.signals.items())
    note = "" if marks else '<p class="note">no thresholds found in select.json</p>'
    return f'<h3>Signals and select thresholds</h3>{note}<div class="charts">{charts}</div>'


def _refine(outputs: RoundOutputs) -> str:
    refine = outputs.metrics.get("refine")
    if refine is None:
        return "<h3>Refine: gate and teacher</h3>" + _missing("refine metrics (refine.json)")
    flat = flatten(refine)
    tokens = {key: numeric(v) for key, v in flat.items() if "token" in key.lower() and numeric(v) is not None}
    token_bars = {key.removeprefix("teacher_usage."): value for key, value in tokens.items()}
    gate = [(key, value) for key, value in flat.items() if any(w in key.lower() for w in ("gate", "reject", "accept"))]
    parts = ["<h3>Refine: gate and teacher</h3>"]
    if isinstance(refine.get("ops"), dict):  # refine.json: ops.<op>.{requested, accepted, rejected_by.<check>, ...}
        parts.append(_per_op_table(refine["ops"]))
    elif gate:
        parts.append(_table(gate, ("gate metric", "value")))
    else:
        parts.append(_missing("gate outcomes in refine.json"))
    parts.append(svg.bars(token_bars, "teacher tokens") if tokens else _missing("teacher token counts in refine.json"))
    other = [(key, value) for key, value in flat.items() if key not in tokens and key not in dict(gate)]
    if other:
        parts.append("<details><summary>all refine metrics</summary>" + _table(other, ("metric", "value")))
        parts.append("</details>")
    return "".join(parts)


def _per_op_table(ops: dict) -> str:
    flat_ops = {op: flatten(values) for op, values in ops.items() if isinstance(values, dict)}
    keys = list(dict.fromkeys(key for values in flat_ops.values() for key in values))
    rows = [(key, *[values.get(key) for values in flat_ops.values()]) for key in keys]
    return _table(rows, ("per operation", *flat_ops))


def _examples(outputs: RoundOutputs, previous: pl.DataFrame | None) -> str:
    if outputs.dataset is None or previous is None:
        return "<h3>Examples</h3>" + _missing("dataset of this round or of the round before")
    changes = diff_datasets(previous, outputs.dataset)
    by_op: dict[str, list] = {}
    for change in [*changes.replaced, *changes.added]:
        by_op.setdefault(change.op, []).append(change)
    if not by_op:
        return '<h3>Examples</h3><p class="note">no sample was replaced or added in this round</p>'
    parts = ["<h3>Examples (before / after)</h3>"]
    for op, items in sorted(by_op.items()):
        examples = lineage_examples(previous, items, outputs.dataset, EXAMPLES_PER_OP)
        parts.append(f"<h4>{escape(op)} ({len(items)})</h4>" + "".join(_example(e) for e in examples))
    return "".join(parts)


def _example(example: Example) -> str:
    def block(label: str, sample_id: str, text: tuple[str, str]) -> str:
        prompt, response = (t if len(t) <= PREVIEW_CHARS else t[:PREVIEW_CHARS] + " [...]" for t in text)
        return f"<div><b>{label}</b> <code>{escape(sample_id)}</code><pre>{escape(prompt)}</pre>" \
               f"<pre>{escape(response)}</pre></div>"

    return f'<div class="example">{block("before", example.parent_id, example.before)}' \
           f'{block("after", example.child_id, example.after)}</div>'
