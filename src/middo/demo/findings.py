"""Score a finished demo run against its planted defects: which defects each signal found, eval@1 vs final.

Reads the files of ARCHITECTURE.md: `data/r0/dataset.parquet` (the seed set with `meta.planted`), per round
`data/r<r>/{flags,scores,knn,ratings}.parquet` and `data/r<r>/eval.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from middo.data.schema import sample_meta
from middo.demo.metrics import auroc, percentile_ranks, precision_recall
from middo.errors import InputError
from middo.tables import join_by_id, read_table

PLANTED_KINDS = ("wrong_answer", "garbled", "over_hard", "rare_family", "clean")
ROUND_TABLES = {"flags": "select", "scores": "score", "knn": "cluster", "ratings": "judge"}
"""The round tables `round_table` reads, each with the stage that writes it."""


@dataclass(frozen=True)
class Signal:
    """A signal, the flag it raises, and the planted defect it should find."""

    name: str
    flag: str
    targets: str  # human description of the target


SIGNALS = (
    Signal("complexity", "hard", "over_hard + wrong_answer"),
    Signal("quality", "low_quality", "garbled"),
    Signal("diversity", "sparse", "rare families"),
)


def ground_truth(project: str | Path) -> pl.DataFrame:
    """`id`, `planted` (a `PLANTED_KINDS` value), `rare`, `family` of every seed sample, from D(0)'s `meta`."""
    path = Path(project) / "data" / "r0" / "dataset.parquet"
    if not path.exists():
        raise InputError(f"{path}: not found; run the pipeline first (`dvc repro` or `middo demo`)")
    frame = pl.read_parquet(path, columns=["id", "meta"])
    rows = []
    for sample_id, meta in frame.iter_rows():
        parsed = sample_meta(meta, sample_id)
        if "planted" not in parsed:
            raise InputError(f"{path}: sample {sample_id} has no meta.planted; is this the demo seed set?")
        planted = parsed["planted"] or "clean"
        rows.append((sample_id, planted, bool(parsed.get("rare")), parsed.get("family") or ""))
    return pl.DataFrame(rows, schema=["id", "planted", "rare", "family"], orient="row")


def round_table(project: str | Path, r: int) -> pl.DataFrame:
    """Flags and signal values of round `r`, restricted to seed samples and joined with their ground truth."""
    truth = ground_truth(project)
    out = Path(project) / "data" / f"r{r}"
    tables = {name: read_table(out / f"{name}.parquet", stage) for name, stage in ROUND_TABLES.items()}
    joined = tables["flags"].select("id", "hard", "sparse", "low_quality")
    joined = join_by_id(joined, tables["scores"].select("id", "loss_pre", "loss_cur"), "flags", "scores")
    joined = join_by_id(joined, tables["knn"].select("id", "knn_sim"), "flags", "knn")
    joined = join_by_id(joined, tables["ratings"].select("id", "quality"), "flags", "ratings")
    return joined.join(truth, on="id", how="inner")


def signal_scores(table: pl.DataFrame) -> dict[str, tuple[list[float], list[bool]]]:
    """Per signal: (score where higher means more suspect, target label) over the rows of `round_table`."""
    complexity = (percentile_ranks(table["loss_pre"].to_numpy()) + percentile_ranks(table["loss_cur"].to_numpy())) / 2
    planted = table["planted"].to_list()
    return {
        "complexity": (list(complexity), [p in ("over_hard", "wrong_answer") for p in planted]),
        "quality": ([-_f(q) for q in table["quality"].to_list()], [p == "garbled" for p in planted]),
        "diversity": ([-_f(s) for s in table["knn_sim"].to_list()], table["rare"].to_list()),
    }


def _f(value: float | None) -> float:
    return math.nan if value is None else float(value)


def signal_findings(table: pl.DataFrame) -> dict[str, dict]:
    """Per signal: AUROC of its score and precision/recall of its flag against the defect it targets."""
    scores = signal_scores(table)
    findings = {}
    for signal in SIGNALS:
        values, labels = scores[signal.name]
        findings[signal.name] = {
            "flag": signal.flag,
            "target": signal.targets,
            "auroc": auroc(values, labels),
            **precision_recall(table[signal.flag].to_list(), labels),
        }
    return findings


def planted_by_flag(table: pl.DataFrame) -> dict[str, dict[str, int]]:
    """flag -> planted kind -> how many samples of that kind the flag raised (plus `total` per kind)."""
    counts = {"total": {k: int((table["planted"] == k).sum()) for k in PLANTED_KINDS}}
    for signal in SIGNALS:
        flagged = table.filter(pl.col(signal.flag))
        counts[signal.flag] = {k: int((flagged["planted"] == k).sum()) for k in PLANTED_KINDS}
    return counts


DEMO_TASK = "middo_demo"
"""The demo's held-out set as an lm-eval task (`data/demo/tasks/middo_demo`)."""


def eval_accuracy(project: str | Path, r: int) -> float:
    """Held-out exact match of `data/r<r>/eval.json`: the harness's `middo_demo` task, else middo's own
    `exact_match` (NaN when the file or both keys are missing)."""
    metrics = eval_metrics(project, r)
    value = metrics.get("tasks", {}).get(DEMO_TASK, {}).get("exact_match", metrics.get("exact_match"))
    return math.nan if value is None else float(value)


def eval_metrics(project: str | Path, r: int) -> dict:
    """`data/r<r>/eval.json` as a dict ({} when missing)."""
    path = Path(project) / "data" / f"r{r}" / "eval.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def rounds_with(project: str | Path, name: str) -> list[int]:
    """Rounds r whose `data/r<r>/<name>` exists, in order."""
    found = [p.parent.name[1:] for p in Path(project).glob(f"data/r*/{name}")]
    return sorted(int(r) for r in found if r.isdigit())


def rounds_run(project: str | Path) -> list[int]:
    """Rounds with an eval.json, in order (the last is the final model's); the baseline eval@0 (M0) is not one."""
    return [r for r in rounds_with(project, "eval.json") if r >= 1]
