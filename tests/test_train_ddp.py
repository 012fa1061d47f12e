"""Two-process data parallel on CPU (torchrun, gloo): the processes see disjoint halves of every global batch, end
with identical weights, and match one process that takes the same global batches by accumulating two micro-batches.

Tolerance: the two runs add the same per-token gradients in a different order (all-reduce of two half-sums versus
one running sum over the accumulated micro-batches), so float32 rounding differs at ~1e-7 relative per step; Adam
divides by the running RMS of the gradient, which can magnify a rounding difference in a near-zero gradient, and the
differences compound over the run's steps. Weights agreeing to 1e-4 absolute (they are O(0.1)) rule out any
difference in data, scaling or schedule, each of which moves weights by far more (checked below: one process with
half the global batch lands > 100x further away).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO_ROOT
from safetensors.torch import load_file
from test_model_train import _dataset, _stage_args, sft_samples

PROBE = str(REPO_ROOT / "tests" / "ddp_probe.py")
TOLERANCE = 1e-4


def _run(command: list[str], cwd) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _max_diff(first, second) -> float:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    return max(float((a[name] - b[name]).abs().max()) for name in a)


@pytest.mark.slow
def test_two_process_cpu_training_splits_the_data_and_matches_one_process(tiny_model_dir, tmp_path):
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps(sft_samples(64)))
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    two, one, half = tmp_path / "two", tmp_path / "one", tmp_path / "half"
    _run([torchrun, "--standalone", "--nproc-per-node", "2", PROBE, str(tiny_model_dir), str(samples), str(two), "1"],
         tmp_path)  # fmt: skip
    _run([sys.executable, PROBE, str(tiny_model_dir), str(samples), str(one), "2"], tmp_path)
    _run([sys.executable, PROBE, str(tiny_model_dir), str(samples), str(half), "1"], tmp_path)

    ranks = [json.loads((two / f"rank{k}.json").read_text()) for k in (0, 1)]
    single = json.loads((one / "rank0.json").read_text())
    assert [r["processes"] for r in ranks] == [2, 2] and ranks[0]["backend"] == "gloo"
    assert not set(ranks[0]["seen"]) & set(ranks[1]["seen"])  # disjoint data
    assert sorted(ranks[0]["seen"] + ranks[1]["seen"]) == sorted(single["seen"])  # together: what one process saw
    assert ranks[0]["digest"] == ranks[1]["digest"]  # identical weights on both processes
    assert ranks[0]["steps"] == single["steps"]

    agreement = _max_diff(two / "model", one / "model")
    assert agreement < TOLERANCE, f"2 processes vs 1 process with the same global batch: max |dw| {agreement:.2e}"
    assert _max_diff(half / "model", one / "model") > 100 * max(agreement, 1e-7)
    print(f"max |dw| 2 processes vs 1: {agreement:.2e}")



@pytest.mark.slow
def test_the_train_stage_runs_under_torchrun(tiny_model_dir, tmp_path):
    """The command `middo unroll` writes for `train.processes: 2` with the torchrun launcher."""
    data = _dataset(tmp_path, sft_samples(32))
    params = {"model": {"base": str(tiny_model_dir), "max_length": 64},
              "train": {"max_steps": 3, "lr": 1e-3, "processes": 2, "save_steps": 2, "token_budget": 128}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    args = _stage_args(tmp_path, tiny_model_dir, data, "m", checkpoints=tmp_path / "ckpt", live=tmp_path / "live")
    _run([torchrun, "--standalone", "--nproc-per-node", "2", "-m", "stages.train", *args], REPO_ROOT)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 3
    assert load_file(tmp_path / "m" / "model.safetensors")
    assert len((tmp_path / "live/plots/metrics/loss.tsv").read_text().splitlines()) == 1 + 3  # one writer
