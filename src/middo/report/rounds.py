"""The per-round sections of the report: flags and overlap, signal histograms, gate and tokens, examples."""

from __future__ import annotations

from html import escape

import polars as pl

from middo.report import svg
from middo.report.collect import FLAGS, TRAIN_LOSS, RoundOutputs, flatten, numeric, rated_by, thresholds
from middo.report.diff import diff_datasets
from middo.report.examples import Example, lineage_examples
from middo.report.markup import missing, table

EXAMPLES_PER_OP = 2
REPLIES_PER_OP = 3
PREVIEW_CHARS = 600
STAGE_METRICS = ("train", "score", "cluster", "judge", "select", "eval")


def round_section(outputs: RoundOutputs, previous: pl.DataFrame | None) -> str:
    """Everything about round `outputs.number`; `previous` is D(r-1) for the before/after examples."""
    parts = [f"<h2>Round {outputs.number}</h2>"]
    if all(value is None for value in outputs.metrics.values()) and outputs.dataset is None:
        parts.append(missing(f"all outputs of round {outputs.number} (not run yet)"))
        return "".join(parts)
    parts += [signal_health(outputs), training(outputs), _flags(outputs), _signals(outputs), _refine(outputs),
              teacher_replies(outputs.refine_log), _examples(outputs, previous)]
    parts.append(other_metrics(outputs))
    if outputs.problems:
        parts.append("<h3>Unreadable files</h3><ul>" + "".join(f"<li>{escape(p)}</li>" for p in outputs.problems))
        parts.append("</ul>")
    return "".join(parts)


def signal_health(outputs: RoundOutputs) -> str:
    """A warning at the top of the round when the judge found its quality signal unusable, or select had none."""
    judge = outputs.metrics.get("judge") or {}
    health = judge.get("health") if isinstance(judge.get("health"), dict) else {}
    unusable = (outputs.metrics.get("select") or {}).get("unusable_signals") or {}
    lines = [f"quality signal UNUSABLE{' and dropped' if health.get('dropped') else ''}: {problem}"
             for problem in health.get("problems") or []]
    lines += [f"select: {name} unusable ({why}); its flag flagged nothing" for name, why in unusable.items()]
    if not lines:
        return ""
    return '<div class="warning"><b>Signal health</b><ul>' + "".join(f"<li>{escape(str(x))}</li>" for x in lines) \
        + "</ul></div>"


def training(outputs: RoundOutputs) -> str:
    """The round model's training loss by step (DVCLive), or why there is none."""
    if outputs.train_loss:
        return f'<h3>Training</h3><div class="charts">{svg.curve(outputs.train_loss, "training loss")}</div>'
    reused = (outputs.metrics.get("train") or {}).get("reused_from")
    if reused:
        return f'<h3>Training</h3><p class="note">not trained: reused {escape(str(reused))}</p>'
    return "<h3>Training</h3>" + missing(f"training loss (data/r{outputs.number}/{TRAIN_LOSS})")


def _flags(outputs: RoundOutputs) -> str:
    if outputs.flags is None:
        return "<h3>Flags</h3>" + missing("flags table (flags.parquet)")
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
        return "<h3>Signals</h3>" + missing("signal tables (scores, knn, ratings)")
    marks = thresholds(outputs.metrics.get("select"))
    charts = "".join(svg.histogram(values, name, marks.get(name)) for name, values in outputs.signals.items())
    note = "" if marks else '<p class="note">no thresholds found in select.json</p>'
    note += _judge_note(outputs.metrics.get("judge"))
    return f'<h3>Signals and select thresholds</h3>{note}<div class="charts">{charts}</div>'


def _judge_note(judge: dict | None) -> str:
    """Who gave the ratings behind `quality`, loudly when it was the demo's simulated judge."""
    if not isinstance(judge, dict) or "mode" not in judge:
        return ""
    who = rated_by(judge)
    if who.startswith("SIMULATED"):
        return f'<p class="note"><b>quality ratings: {escape(who)}</b> (demo rules on a loopback server)</p>'
    return f'<p class="note">quality ratings: {escape(who)}</p>'


def _refine(outputs: RoundOutputs) -> str:
    refine = outputs.metrics.get("refine")
    if refine is None:
        return "<h3>Refine: gate and teacher</h3>" + missing("refine metrics (refine.json)")
    flat = flatten(refine)
    tokens = {key: numeric(v) for key, v in flat.items() if "token" in key.lower() and numeric(v) is not None}
    token_bars = {key.removeprefix("teacher_usage."): value for key, value in tokens.items()}
    gate = [(key, value) for key, value in flat.items() if any(w in key.lower() for w in ("gate", "reject", "accept"))]
    parts = ["<h3>Refine: gate and teacher</h3>"]
    if isinstance(refine.get("ops"), dict):  # refine.json: ops.<op>.{requested, accepted, rejected_by.<check>, ...}
        parts.append(_per_op_table(refine["ops"]))
    elif gate:
        parts.append(table(gate, ("gate metric", "value")))
    else:
        parts.append(missing("gate outcomes in refine.json"))
    parts.append(svg.bars(token_bars, "teacher tokens") if tokens else missing("teacher token counts in refine.json"))
    other = [(key, value) for key, value in flat.items() if key not in tokens and key not in dict(gate)]
    if other:
        parts.append("<details><summary>all refine metrics</summary>" + table(other, ("metric", "value")))
        parts.append("</details>")
    return "".join(parts)


def teacher_replies(log: pl.DataFrame | None, per_op: int = REPLIES_PER_OP) -> str:
    """A few raw teacher replies per operation from the refine log, those that yielded no child first."""
    if log is None or "prompt_reply" not in log.columns or log.is_empty():
        return ""
    parts = ["<h3>Teacher replies (raw, from refine_log.parquet)</h3>"]
    ranked = log.with_columns((pl.col("outcome") == "accepted").alias("_ok")).sort("_ok", maintain_order=True)
    for op in sorted(set(log["op"].to_list())):
        rows = ranked.filter(pl.col("op") == op).head(per_op).iter_rows(named=True)
        parts.append(f"<h4>{escape(op)}</h4>" + "".join(_reply_block(row) for row in rows))
    return "".join(parts)


def _reply_block(row: dict) -> str:
    def pre(label: str, text: str | None) -> str:
        if text is None:
            return f"<div><b>{label}</b> <i>no reply</i></div>"
        shown = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " [...]"
        return f"<div><b>{label}</b><pre>{escape(shown)}</pre></div>"

    head = f"{row['outcome']}" + (f": {row['reason']}" if row.get("reason") else "")
    return f'<p class="note"><code>{escape(str(row["parent"]))}</code> {escape(head)}</p><div class="example">' \
           f'{pre("prompt phase", row["prompt_reply"])}{pre("response phase", row["response_reply"])}</div>'


def _per_op_table(ops: dict) -> str:
    flat_ops = {op: flatten(values) for op, values in ops.items() if isinstance(values, dict)}
    keys = list(dict.fromkeys(key for values in flat_ops.values() for key in values))
    rows = [(key, *[values.get(key) for values in flat_ops.values()]) for key in keys]
    return table(rows, ("per operation", *flat_ops))


def _examples(outputs: RoundOutputs, previous: pl.DataFrame | None) -> str:
    if outputs.dataset is None or previous is None:
        return "<h3>Examples</h3>" + missing("dataset of this round or of the round before")
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


def other_metrics(outputs: RoundOutputs, names=STAGE_METRICS, open_: bool = False) -> str:
    """A collapsible table of the named stages' metrics (a missing file is listed as missing)."""
    rows = []
    for name in names:
        flat = flatten(outputs.metrics.get(name))
        if outputs.metrics.get(name) is None:
            rows.append((f"{name}.json", None))
        rows += [(f"{name}.{key}", value) for key, value in flat.items() if not isinstance(value, list)]
    state = " open" if open_ else ""
    return f"<details{state}><summary>stage metrics</summary>{table(rows, ('metric', 'value'))}</details>"
