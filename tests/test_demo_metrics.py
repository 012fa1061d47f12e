"""Scoring signals against planted defects: AUROC and precision/recall, findings of a run, `middo demo` CLI."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.ingest import seed_sample
from middo.data.schema import SAMPLE_SCHEMA, write_samples
from middo.demo.findings import PLANTED_KINDS, ground_truth, round_table, signal_findings
from middo.demo.generate import SuiteConfig, write_suite
from middo.demo.metrics import auroc, mean_spread, percentile_ranks, precision_recall
from middo.demo.report import demo_summary, format_summary
from middo.log import write_metrics


def brute_auroc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_known_values_and_against_pair_counting():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0 and auroc([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0
    assert auroc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5
    assert math.isnan(auroc([1, 2], [1, 1])) and math.isnan(auroc([], []))
    assert auroc([math.nan, 1, 2, math.nan], [1, 0, 1, 0]) == 1.0  # NaN scores are left out
    rng = random.Random(0)
    for _ in range(20):
        scores = [rng.randint(0, 6) for _ in range(40)]
        labels = [rng.random() < 0.3 for _ in range(40)]
        if any(labels) and not all(labels):
            assert auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))
    with pytest.raises(ValueError):
        auroc([1, 2, 3], [1, 0])


def test_precision_recall_ranks_and_spread():
    result = precision_recall([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert result == {"precision": 2 / 3, "recall": 2 / 3, "flagged": 3, "targets": 3, "hits": 2}
    assert math.isnan(precision_recall([0, 0], [1, 0])["precision"])
    assert math.isnan(precision_recall([1, 0], [0, 0])["recall"])
    ranks = percentile_ranks([3.0, 1.0, math.nan, 3.0])
    assert ranks[1] == pytest.approx(1 / 3) and ranks[0] == ranks[3] == pytest.approx(2.5 / 3) and math.isnan(ranks[2])
    assert mean_spread([1.0, 3.0, math.nan]) == {"mean": 2.0, "std": 1.0, "n": 2}
    assert mean_spread([])["n"] == 0


def make_run(project: Path, noise: float) -> pl.DataFrame:
    """A finished one-round run whose signals see the planted defects through `noise`."""
    paths = write_suite(project / "data" / "demo", SuiteConfig(n_seed=300, n_eval=60, n_corpus=50))
    rows = [json.loads(line) for line in paths["seed"].read_text().splitlines()]
    rows = [{"messages": row.pop("messages"), "meta": row} for row in rows]  # as ingestion keeps them
    frame = pl.DataFrame([seed_sample(r["messages"], "seed", r["meta"]) for r in rows], schema=SAMPLE_SCHEMA)
    write_samples(frame, project / "data" / "r0" / "dataset.parquet")
    rng = np.random.default_rng(0)
    planted = [r["meta"]["planted"] for r in rows]
    hard = np.array([p in ("over_hard", "wrong_answer") for p in planted], dtype=float)
    garbled = np.array([p == "garbled" for p in planted], dtype=float)
    rare = np.array([r["meta"]["rare"] for r in rows], dtype=float)
    n = len(rows)
    ids = frame["id"].to_list()
    out = project / "data" / "r1"
    out.mkdir(parents=True)
    loss_pre, loss_cur = 2 + hard + noise * rng.normal(size=n), 1 + hard + noise * rng.normal(size=n)
    quality = 7 - 3 * garbled + noise * rng.normal(size=n)
    knn_sim = 0.9 - 0.3 * rare + noise * 0.1 * rng.normal(size=n)
    pl.DataFrame({"id": ids, "loss_pre": loss_pre, "loss_cur": loss_cur}).write_parquet(out / "scores.parquet")
    pl.DataFrame({"id": ids, "knn_sim": knn_sim}).write_parquet(out / "knn.parquet")
    pl.DataFrame({"id": ids, "quality": quality}).write_parquet(out / "ratings.parquet")
    flags = pl.DataFrame({"id": ids, "hard": loss_cur > 1.8, "sparse": knn_sim < 0.75, "low_quality": quality < 5.5})
    flags.with_columns(reasons=pl.lit([], dtype=pl.List(pl.Utf8))).write_parquet(out / "flags.parquet")
    write_metrics({"exact_match": 0.25, "nll": 2.0}, out / "eval.json")
    write_metrics({"exact_match": 0.5}, project / "data" / "r2" / "eval.json")
    usage = {"requests": 12, "prompt_tokens": 900, "completion_tokens": 80, "cache_hits": 0}
    write_metrics({"teacher_usage": usage, "total": {"requested": 6, "accepted": 4}}, out / "refine.json")
    write_metrics({"mode": "openai", "teacher_usage": {**usage, "simulated": True}}, out / "judge.json")
    return frame


def test_findings_score_each_signal_against_its_target(tmp_path):
    make_run(tmp_path, noise=0.2)
    truth = ground_truth(tmp_path)
    assert set(truth["planted"].unique()) <= set(PLANTED_KINDS) and truth.height == 300
    findings = signal_findings(round_table(tmp_path, 1))
    for name in ("complexity", "quality", "diversity"):
        assert findings[name]["auroc"] > 0.95, (name, findings[name])
        assert findings[name]["recall"] > 0.8 and findings[name]["precision"] > 0.8, (name, findings[name])
    noisy = tmp_path / "noisy"
    make_run(noisy, noise=50.0)
    for name, found in signal_findings(round_table(noisy, 1)).items():
        assert 0.25 < found["auroc"] < 0.75, (name, found)  # pure noise: near chance


def test_summary_and_cli_print_defects_found_and_eval(tmp_path):
    make_run(tmp_path, noise=0.2)
    summary = demo_summary(tmp_path)
    assert summary["eval_first"] == 0.25 and summary["eval_final"] == 0.5
    assert summary["teacher"][1] == {
        "requests": 12, "prompt_tokens": 900, "completion_tokens": 80, "children_requested": 6, "children_accepted": 4
    }
    counts = summary["rounds"][1]["planted_by_flag"]
    assert sum(counts["total"].values()) == 300 and counts["hard"]["over_hard"] > 0
    text = format_summary(summary)
    assert "AUROC" in text and "eval@1 0.250" in text and "eval@2 0.500" in text
    assert "ratings (quality signal) by: SIMULATED judge (openai)" in text
    result = CliRunner().invoke(app, ["demo", "--project", str(tmp_path), "--no-repro"])
    assert result.exit_code == 0, result.output
    assert "complexity" in result.output and "final model (eval@2) 0.500" in result.output
    report = (tmp_path / "report.html").resolve()
    assert f"report: {report}" in result.output and report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "quality ratings: SIMULATED judge" in report.read_text(encoding="utf-8")
    write_metrics({"mode": "logits"}, tmp_path / "data" / "r1" / "judge.json")
    assert "by: the round model (logits)" in format_summary(demo_summary(tmp_path))
    write_metrics({"mode": "openai", "teacher_usage": {"model": "judge-x"}}, tmp_path / "data" / "r1" / "judge.json")
    assert "by: judge-x (openai)" in format_summary(demo_summary(tmp_path))
    for r in (1, 2):  # a run stopped after refine-1: the findings still print, the eval line does not
        (tmp_path / "data" / f"r{r}" / "eval.json").unlink()
    partial = demo_summary(tmp_path)
    assert list(partial["rounds"]) == [1] and math.isnan(partial["eval_final"])
    assert "eval@" not in format_summary(partial) and "diversity" in format_summary(partial)


def test_cli_generate_writes_the_suite_and_missing_run_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["demo", "generate", "--out", str(tmp_path / "demo"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"seed.jsonl", "eval.jsonl", "corpus.txt", "README.md"}
    (tmp_path / "data" / "r1").mkdir(parents=True)
    pl.DataFrame({"id": ["a"], "hard": [True]}).write_parquet(tmp_path / "data" / "r1" / "flags.parquet")
    write_metrics({"exact_match": 0.1}, tmp_path / "data" / "r1" / "eval.json")
    missing = CliRunner().invoke(app, ["demo", "--project", str(tmp_path), "--no-repro"])
    assert missing.exit_code == 1 and "run the pipeline first" in missing.output
