"""Data-parallel forward stages (`middo.model.ranks`): length-balanced shards, rows gathered to process 0 by id, and
the score, judge (logits) and eval stages under torchrun with 2 CPU processes (gloo) writing the tables of 1 process.

Tolerances: a sample's forward pass is the same arithmetic in either run, but it shares its length-sorted batch with
other samples (a different pad width and batch shape), so float32 matmuls may round differently in the last bits:
losses and ratings agree to 1e-5 relative, embeddings to 1e-4 in cosine. A sample scored twice, lost, or swapped
with another would be off by far more (whole units of loss).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import REPO_ROOT, stage_error
from judge_helpers import make_samples
from test_harness_eval import write_mc_task

from middo.data.schema import SAMPLE_SCHEMA
from middo.errors import JoinError
from middo.model import ranks
from middo.outputs import staged_outputs, staging_path
from middo.signals.embeddings import load_embeddings
from middo.signals.judge_prompts import ASPECTS

RELATIVE, COSINE = 1e-5, 1e-4


def test_shards_are_disjoint_cover_everything_and_balance_length():
    lengths = [50, 3, 40, 8, 8, 30, 1, 22, 9]
    shares = [ranks.shard_indices(lengths, rank, 2) for rank in (0, 1)]
    assert sorted(shares[0] + shares[1]) == list(range(len(lengths))) and not set(shares[0]) & set(shares[1])
    assert all(share == sorted(share) for share in shares)  # input order within a share
    totals = [sum(lengths[i] for i in share) for share in shares]
    assert abs(totals[0] - totals[1]) <= max(lengths)
    contiguous = sum(lengths[:5]), sum(lengths[5:])  # a split by position would be 109 vs 62
    assert abs(totals[0] - totals[1]) < abs(contiguous[0] - contiguous[1])


def test_gathered_rows_come_back_in_dataset_order_and_must_match_it_one_to_one():
    columns = {"id": ["b", "c", "a"], "x": np.array([2.0, 3.0, 1.0]), "y": [[2], [3], [1]]}
    merged = ranks.gather_rows(columns, ["a", "b", "c"], ranks.SINGLE, "test rows")
    assert merged["id"] == ["a", "b", "c"] and merged["x"].tolist() == [1.0, 2.0, 3.0]
    assert merged["y"] == [[1], [2], [3]]
    with pytest.raises(JoinError, match="test rows.*missing e.g. \\['d'\\]"):
        ranks.gather_rows(columns, ["a", "b", "c", "d"], ranks.SINGLE, "test rows")
    with pytest.raises(JoinError, match="1 repeated ids"):
        ranks.gather_rows({"id": ["a", "a", "b"]}, ["a", "b"], ranks.SINGLE, "test rows")
    table = pl.DataFrame({"id": ["b", "a"], "v": [2, 1]}, schema={"id": pl.Utf8, "v": pl.Int32})
    frame, arrays = ranks.gather_table(table, ["a", "b"], ranks.SINGLE, "t", {"e": np.eye(2)})
    assert frame.schema == table.schema and frame["v"].to_list() == [1, 2] and arrays["e"].tolist() == [[0, 1], [1, 0]]


@dataclass(frozen=True)
class _Paths:
    output: Path


def test_a_process_other_than_0_neither_clears_nor_moves_the_staged_outputs(tmp_path):
    final = tmp_path / "t.parquet"
    final.write_text("old")
    staging_path(final).write_text("being written by process 0")
    with staged_outputs(_Paths(final), ("output",), writer=False) as paths:
        assert paths.output == staging_path(final) and paths.output.read_text() == "being written by process 0"
    assert final.read_text() == "old" and staging_path(final).read_text() == "being written by process 0"


def _dataset(path, samples: list[dict], meta: list[str] | None = None) -> str:
    rows = [{**s, "source": "t", "round": 0, "parent": None, "op": "seed", "meta": m}
            for s, m in zip(samples, meta or ["{}"] * len(samples), strict=True)]  # fmt: skip
    pl.DataFrame(rows, schema=SAMPLE_SCHEMA).write_parquet(path)
    return str(path)


def _launch(stage: str, args: list[str], processes: int, script: list[str] | None = None):
    """`stages.<stage>` (or a `script` that runs it) under torchrun with `processes` CPU processes of 1 thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": ""}
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    command = [torchrun, "--standalone", "--nproc-per-node", str(processes), *(script or ["-m", f"stages.{stage}"])]
    return subprocess.run([*command, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def _run_both(stage: str, args_for, script: list[str] | None = None) -> list[str]:
    """Run the stage as 1 process (this one: no start-up to pay) and under torchrun with 2; their output folders."""
    importlib.import_module(f"stages.{stage}").main(args_for("one"))
    done = _launch(stage, args_for("two"), 2, script)
    assert done.returncode == 0, done.stderr[-3000:]
    return ["one", "two"]


def _close(a, b, rtol: float) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a, b, rtol=rtol, atol=0, equal_nan=True))


def _params(tmp_path, model_dir, **sections) -> str:
    params = {"model": {"base": str(model_dir), "device": "cpu", "max_length": 128}, **sections}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return str(tmp_path / "params.yaml")


@pytest.mark.slow
def test_score_under_two_processes_writes_the_tables_of_one(tiny_model_dir, tmp_path):
    data = _dataset(tmp_path / "d.parquet", make_samples(24))
    params = _params(tmp_path, tiny_model_dir, score={"token_budget": 512})

    def args(name):
        out = tmp_path / name
        return ["--data", data, "--base", str(tiny_model_dir), "--model", str(tiny_model_dir), "--output",
                str(out / "scores.parquet"), "--embeddings", str(out / "emb"), "--metrics", str(out / "score.json"),
                "--params", params]  # fmt: skip

    one, two = (tmp_path / name for name in _run_both("score", args))
    first, second = pl.read_parquet(one / "scores.parquet"), pl.read_parquet(two / "scores.parquet")
    assert first["id"].to_list() == second["id"].to_list() == pl.read_parquet(data)["id"].to_list()
    assert first.drop("loss_pre", "loss_cur").equals(second.drop("loss_pre", "loss_cur"))
    for column in ("loss_pre", "loss_cur"):
        assert _close(first[column], second[column], RELATIVE), column
    (ids_a, vectors_a), (ids_b, vectors_b) = load_embeddings(one / "emb"), load_embeddings(two / "emb")
    norms = np.linalg.norm(vectors_a, axis=1) * np.linalg.norm(vectors_b, axis=1)
    cosine = np.sum(vectors_a * vectors_b, axis=1) / norms
    assert ids_a == ids_b and float(cosine.min()) > 1 - COSINE
    metrics = [json.loads((path / "score.json").read_text()) for path in (one, two)]
    assert [m["processes"] for m in metrics] == [1, 2] and metrics[0]["tokens_scored"] == metrics[1]["tokens_scored"]
    assert not list(tmp_path.rglob(".*.partial"))


@pytest.mark.slow
def test_judge_logits_under_two_processes_writes_the_ratings_of_one(tiny_model_dir, tmp_path):
    data = _dataset(tmp_path / "d.parquet", make_samples(16))
    judge = {"mode": "logits", "token_budget": 2048, "min_score_mass": 0.0, "on_unusable": "drop"}
    params = _params(tmp_path, tiny_model_dir, judge=judge)

    def args(name):
        out = tmp_path / name
        return ["--data", data, "--model", str(tiny_model_dir), "--output", str(out / "ratings.parquet"),
                "--metrics", str(out / "judge.json"), "--plot", str(out / "hist.csv"), "--params", params]  # fmt: skip

    one, two = (tmp_path / name for name in _run_both("judge", args))
    first, second = pl.read_parquet(one / "ratings.parquet"), pl.read_parquet(two / "ratings.parquet")
    assert first["id"].to_list() == second["id"].to_list() == pl.read_parquet(data)["id"].to_list()
    assert np.isfinite(first[ASPECTS[0]].to_numpy()).all()  # real ratings are compared, not NaN against NaN
    for column in (*ASPECTS, "quality"):
        assert _close(first[column], second[column], RELATIVE), column
    metrics = [json.loads((path / "judge.json").read_text()) for path in (one, two)]
    assert [m["processes"] for m in metrics] == [1, 2] and metrics[0]["samples"] == metrics[1]["samples"] == 16


def _eval_data(tmp_path) -> str:
    samples = make_samples(12)
    meta = [json.dumps({"answer": "the river"}) if i % 3 == 0 else "{}" for i in range(len(samples))]
    return _dataset(tmp_path / "eval.parquet", samples, meta)


@pytest.mark.slow
def test_eval_under_two_processes_gives_the_metrics_of_one(tiny_model_dir, tmp_path):
    """Held-out NLL and exact match, and an lm-eval multiple-choice task shared out by the harness."""
    data = _eval_data(tmp_path)
    task = write_mc_task(tmp_path / "mc")
    params = _params(tmp_path, tiny_model_dir, eval={"tasks": [str(task)], "batch_size": 2, "max_new_tokens": 4})

    def args(name):
        return ["--model", str(tiny_model_dir), "--data", data, "--metrics", str(tmp_path / name / "eval.json"),
                "--params", params]  # fmt: skip

    probe = [str(REPO_ROOT / "tests" / "harness_rank_probe.py"), str(tmp_path)]
    one, two = (json.loads((tmp_path / name / "eval.json").read_text()) for name in _run_both("eval", args, probe))
    assert (one["processes"], two["processes"]) == (1, 2)
    for key in ("nll", "nll_sample_mean"):
        assert _close(one[key], two[key], RELATIVE), key
    for key in ("samples", "assistant_tokens", "truncated", "answer_samples", "exact_match"):
        assert one[key] == two[key], key
    assert one["answer_samples"] == 4
    mc_one, mc_two = one["tasks"]["tiny_mc"], two["tasks"]["tiny_mc"]
    assert mc_one["samples"] == mc_two["samples"] == 3 and mc_one["acc"] == mc_two["acc"]
    handed = [json.loads((tmp_path / f"harness_rank{k}.json").read_text()) for k in (0, 1)]
    assert [(h["rank"], h["world_size"]) for h in handed] == [(0, 2), (1, 2)]  # the harness shared the documents
    assert sorted(handed[0]["docs"] + handed[1]["docs"]) == [0, 1, 2] and handed[1]["docs"]


@pytest.mark.slow
def test_a_failing_process_fails_the_stage_and_leaves_no_output(tiny_model_dir, tmp_path):
    """One sample's broken `meta` fails the process whose share holds it; the other waits in the gather."""
    samples = make_samples(6)
    data = _dataset(tmp_path / "eval.parquet", samples, ["{}"] * 5 + ["not json"])
    params = _params(tmp_path, tiny_model_dir, eval={"max_new_tokens": 2})
    metrics = tmp_path / "out" / "eval.json"
    metrics.parent.mkdir()
    metrics.write_text('{"earlier": 1}')
    done = _launch("eval", ["--model", str(tiny_model_dir), "--data", data, "--metrics", str(metrics), "--params",
                            params], 2)  # fmt: skip
    assert done.returncode != 0 and "its `meta` is not valid JSON" in done.stderr
    assert metrics.read_text() == '{"earlier": 1}' and not staging_path(metrics).exists()


def test_a_judge_that_sends_requests_refuses_several_processes(capsys, monkeypatch, tmp_path):
    from stages.judge import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"judge": {"mode": "openai"}}))
    args = ["--data", str(tmp_path / "d.parquet"), "--model", "m", "--output", str(tmp_path / "r.parquet"),
            "--metrics", str(tmp_path / "j.json"), "--plot", str(tmp_path / "h.csv"), "--params", str(params)]
    error = stage_error(capsys, main, args)
    assert "judge.mode is openai" in error and "2 were started" in error and "middo unroll" in error
