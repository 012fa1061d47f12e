"""middo report: one self-contained HTML file from synthetic round outputs, with missing parts shown as missing."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest
from test_diff import _frame, _sample
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import write_samples
from middo.report.html import build_report


def _write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


@pytest.fixture
def project(tmp_path):
    """Round 1 complete, round 2 only trained, round 3 (final) evaluated; params.yaml says 2 rounds."""
    (tmp_path / "params.yaml").write_text("loop:\n  rounds: 2\n", encoding="utf-8")
    seed = [_sample(f"question {i}", f"answer {i}") for i in range(12)]
    write_samples(_frame(seed), tmp_path / "data/r0/dataset.parquet")
    child = _sample("an easier question <0>", "easy answer", 1, seed[0]["id"], "simplify")
    extra = _sample("a new question", "new answer", 1, seed[5]["id"], "synthesize")
    write_samples(_frame([child, *seed[1:], extra]), tmp_path / "data/r1/dataset.parquet")
    ids = [s["id"] for s in seed]
    rng = np.random.default_rng(0)
    r1 = tmp_path / "data/r1"
    pl.DataFrame({"id": ids, "loss_pre": rng.normal(3, 1, 12), "loss_cur": rng.normal(2, 1, 12),
                  "n_tokens": [10] * 12, "truncated": [False] * 12}).write_parquet(r1 / "scores.parquet")
    pl.DataFrame({"id": ids, "knn_sim": rng.uniform(0, 1, 12), "neighbor_ids": [[]] * 12,
                  "neighbor_sims": [[]] * 12, "cluster": [0] * 12}).write_parquet(r1 / "knn.parquet")
    quality = [float("nan")] + list(rng.uniform(2, 9, 11))
    pl.DataFrame({"id": ids, "quality": quality}).write_parquet(r1 / "ratings.parquet")
    hard, sparse = [i == 0 for i in range(12)], [i in (0, 5) for i in range(12)]
    pl.DataFrame({"id": ids, "hard": hard, "sparse": sparse, "low_quality": [False] * 12,
                  "reasons": [[]] * 12}).write_parquet(r1 / "flags.parquet")
    marks = {"hard": {"loss_pre": 4.5, "loss_cur": 3.0}, "sparse": {"knn_sim": 0.2}, "low_quality": {"quality": 3.0}}
    budget = {**marks, "hard": {"loss_pre": 4.0, "loss_cur": 3.0}}
    _write_json(r1 / "select.json", {"thresholds": budget, "sigma_rule_thresholds": marks, "counts": {"hard": 1}})
    ops = {op: {"requested": 2, "accepted": 1, "rejected": 1, "rejected_by": {"copy": 1, "signal": 0}}
           for op in ("simplify", "improve", "synthesize")}
    usage = {"simplify": {"prompt_tokens": 420, "completion_tokens": 80, "requests": 2}}
    _write_json(r1 / "refine.json", {"gate": True, "ops": ops, "teacher_usage": usage})
    _write_json(r1 / "eval.json", {"nll": 2.5, "exact_match": 0.1})
    _write_json(tmp_path / "data/r2/train.json", {"final_loss": 1.0})
    _write_json(tmp_path / "data/r3/eval.json", {"nll": 2.1, "exact_match": 0.3})
    return tmp_path


def test_report_has_every_section_and_no_external_assets(project):
    html = build_report(project)
    for heading in ("Datasets by round", "Held-out evaluation by round", "Round 1", "Round 2", "Final model (round 3)",
                    "Flags (12 samples)", "Signals and select thresholds", "Refine: gate and teacher",
                    "Examples (before / after)"):
        assert heading in html, heading
    assert "an easier question &lt;0&gt;" in html  # escaped child prompt next to its parent
    assert "simplify (1)" in html and "synthesize (1)" in html
    assert "hard.loss_pre 4<title>" in html and "σ-rule hard.loss_pre 4.5<title>" in html
    assert html.count("hard.loss_cur 3<title>") == 1  # equal values shown once
    assert "n=11" in html  # NaN quality is not plotted
    assert "<td>rejected_by.copy</td>" in html and "<th>improve</th>" in html  # gate outcomes per operation
    assert "simplify.prompt_tokens" in html and "teacher tokens" in html
    assert "missing: round 2" in html  # eval chart gap
    assert "refine metrics (refine.json): missing" in html  # round 2
    assert html.count("<svg") >= 8
    assert "<script" not in html and not re.search(r'(src|href)=', html)


def test_report_of_an_empty_project_shows_missing_instead_of_failing(tmp_path):
    html = build_report(tmp_path)
    assert "eval metrics (data/r&lt;n&gt;/eval.json): missing" in html
    assert "loop.rounds not found" in html


def test_report_cli_writes_the_file(project):
    output = project / "out.html"
    result = CliRunner().invoke(app, ["report", "--project", str(project), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_round_sections_draw_the_dvclive_training_loss(project):
    tsv = project / "data/r1/live/plots/metrics/loss.tsv"  # as DVCLive writes it: one row per logging step
    tsv.parent.mkdir(parents=True)
    tsv.write_text("step\tloss\n0\t3.5\n1\t2.25\n2\tnan\n3\t1.5\n", encoding="utf-8")
    (tsv.parent / "train").mkdir()  # the run's mean loss, one row: not the curve
    (tsv.parent / "train/loss.tsv").write_text("step\tloss\n4\t2.4\n", encoding="utf-8")
    _write_json(project / "data/r2/train.json", {"reused_from": "models/r1", "steps": 0})
    html = build_report(project)
    round_1 = html.split("<h2>Round 1</h2>")[1].split("<h2>")[0]
    points = re.search(r'<polyline points="([^"]+)"', round_1)[1].split()
    assert "training loss" in round_1 and len(points) == 3  # the NaN row is left out
    assert [float(p.split(",")[1]) for p in points] == sorted(float(p.split(",")[1]) for p in points)  # falling loss
    assert "not trained: reused models/r1" in html.split("<h2>Round 2</h2>")[1]
    assert "training loss (data/r3/live/plots/metrics/loss.tsv): missing" in html  # final model, not yet
    tsv.write_text("step\tlr\n0\t0.1\n", encoding="utf-8")
    assert "loss.tsv: unreadable" in build_report(project)
