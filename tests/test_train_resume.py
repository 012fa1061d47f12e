"""Kill and resume: a train stage killed with SIGKILL after a checkpoint continues from it when run again, and
ends with the weights of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import REPO_ROOT
from test_model_train import _dataset, _stage_args, sft_samples

SAVE_STEPS = 10


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "stages.train", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _complete(checkpoint) -> bool:
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def _kill_after_first_checkpoint(process: subprocess.Popen, checkpoints) -> None:
    deadline = time.monotonic() + 120
    while not _complete(checkpoints / f"checkpoint-{SAVE_STEPS}"):
        assert process.poll() is None, f"train ended before its first checkpoint: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_a_killed_train_resumes_and_ends_with_the_uninterrupted_weights(tiny_model_dir, tmp_path):
    data = _dataset(tmp_path, sft_samples(48))
    params = {"model": {"base": str(tiny_model_dir), "max_length": 64},
              "train": {"max_steps": 200, "epochs": 100, "token_budget": 256, "lr": 1e-3, "save_steps": SAVE_STEPS}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    killed = _start(_stage_args(tmp_path, tiny_model_dir, data, "killed", checkpoints=tmp_path / "ckpt"))
    _kill_after_first_checkpoint(killed, tmp_path / "ckpt")
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "killed.json").exists()

    resumed = _start(_stage_args(tmp_path, tiny_model_dir, data, "killed", checkpoints=tmp_path / "ckpt"))
    assert resumed.wait() == 0, resumed.stderr.read()[-2000:]
    metrics = json.loads((tmp_path / "killed.json").read_text())
    assert metrics["resumed_from_step"] >= SAVE_STEPS and metrics["steps"] == 200

    whole = _start(_stage_args(tmp_path, tiny_model_dir, data, "whole", checkpoints=tmp_path / "ckpt2"))
    assert whole.wait() == 0, whole.stderr.read()[-2000:]
    for name in ("model.safetensors", "middo_train.json"):  # the model dir's content: what DVC hashes
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
