"""SFT through TRL on the tiny model: loss goes down, same seed same weights, train and score agree on the tokens,
the stage writes curves and reuses a model trained on the same data, bad settings fail before any step."""

from __future__ import annotations

import csv
import json
import math
import re

import polars as pl
import pytest
import torch
import yaml
from conftest import corpus_lines
from safetensors.torch import load_file

from middo.data.schema import sample_id, write_samples
from middo.errors import ConfigError
from middo.model.config import LoraSettings, ModelConfig, TrainConfig
from middo.model.train import train_sft


def sft_samples(n: int = 48) -> list[dict]:
    samples = []
    for line in corpus_lines(n, seed=3):
        head, _, tail = line.partition(". ")
        messages = [{"role": "user", "content": head + "?"}, {"role": "assistant", "content": tail}]
        samples.append({"id": sample_id(messages), "messages": messages})
    return samples


CONFIG = TrainConfig(epochs=3, lr=3e-3, token_budget=512, grad_accum=2, seed=7, save_steps=0)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    metrics = train_sft(tiny_model_dir, sft_samples(), CONFIG, ModelConfig(base=str(tiny_model_dir)), out / "model",
                        progress=False)  # fmt: skip
    return out, metrics


def test_training_lowers_loss_and_changes_parameters(trained, tiny_model_dir):
    out, metrics = trained
    assert metrics["loss_last"] < metrics["loss_first"] - 0.5
    assert metrics["steps"] == 3 * math.ceil(metrics["batches_per_epoch"] / 2)
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(out / "model" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) == len(before)
    assert {tensor.dtype for tensor in after.values()} == {torch.float32}  # the training dtype on CPU
    files = {path.name for path in (out / "model").iterdir()}
    assert {"tokenizer.json", "chat_template.jinja", "middo_train.json"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth"))]  # nothing pickled


def test_same_seed_gives_identical_weights(trained, tiny_model_dir, tmp_path):
    out, _ = trained
    train_sft(tiny_model_dir, sft_samples(), CONFIG, ModelConfig(base=str(tiny_model_dir)), tmp_path / "again",
              progress=False)  # fmt: skip
    first, second = out / "model" / "model.safetensors", tmp_path / "again" / "model.safetensors"
    assert first.read_bytes() == second.read_bytes()


def _dataset(tmp_path, samples) -> str:
    frame = pl.DataFrame(
        {"id": [s["id"] for s in samples], "messages": [s["messages"] for s in samples],
         "source": ["t"] * len(samples), "round": [0] * len(samples), "parent": [None] * len(samples),
         "op": ["seed"] * len(samples), "meta": ["{}"] * len(samples)}  # fmt: skip
    )
    write_samples(frame, tmp_path / "d.parquet")
    return str(tmp_path / "d.parquet")


def _stage_args(tmp_path, base, data, name: str, **extra) -> list[str]:
    args = ["--data", data, "--base", str(base), "--output", str(tmp_path / name), "--metrics",
            str(tmp_path / f"{name}.json"), "--params", str(tmp_path / "params.yaml")]  # fmt: skip
    for key, value in extra.items():
        args += [f"--{key}", str(value)]
    return args


def test_train_stage_writes_model_metrics_curves_and_clears_its_checkpoints(tiny_model_dir, tmp_path):
    from stages.train import main

    data = _dataset(tmp_path, sft_samples(16))
    params = {"model": {"base": str(tiny_model_dir), "max_length": 64},
              "train": {"epochs": 3, "max_steps": 4, "save_steps": 2, "lr": 1e-3, "token_budget": 128}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(_stage_args(tmp_path, tiny_model_dir, data, "m", checkpoints=tmp_path / "ckpt", live=tmp_path / "live"))
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["steps"] == 4 and metrics["samples"] == 16 and metrics["resumed_from_step"] == 0
    assert (tmp_path / "m" / "model.safetensors").exists()
    curve = list(csv.DictReader((tmp_path / "live/plots/metrics/loss.tsv").open(), delimiter="\t"))
    assert [int(row["step"]) for row in curve] == [0, 1, 2, 3]  # one point per optimiser step, for `dvc plots`
    assert float(curve[-1]["loss"]) == pytest.approx(metrics["loss_last"])
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["step"] == 4
    assert not list((tmp_path / "ckpt").glob("checkpoint-*"))  # the model is saved: checkpoints are not kept
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["finished"] is True


def test_a_round_with_the_same_data_reuses_the_previous_model(tiny_model_dir, tmp_path):
    from stages.train import main

    samples = sft_samples(12)
    data = _dataset(tmp_path, samples)
    params = {"model": {"base": str(tiny_model_dir), "max_length": 64},
              "train": {"max_steps": 2, "lr": 1e-3, "token_budget": 128}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(_stage_args(tmp_path, tiny_model_dir, data, "r1"))
    (tmp_path / "live2" / "plots" / "metrics").mkdir(parents=True)
    (tmp_path / "live2" / "plots" / "metrics" / "loss.tsv").write_text("step\tloss\n0\t9.9\n")  # an earlier run's
    main(_stage_args(tmp_path, tiny_model_dir, data, "r2", reuse=tmp_path / "r1", checkpoints=tmp_path / "ckpt2",
                     live=tmp_path / "live2"))  # fmt: skip
    reused = json.loads((tmp_path / "r2.json").read_text())
    assert reused["reused_from"] == str(tmp_path / "r1") and reused["steps"] == 0
    # every output DVC expects exists, and no stale curve says this round was trained
    assert json.loads((tmp_path / "live2" / "metrics.json").read_text())["reused_from"] == str(tmp_path / "r1")
    assert not list((tmp_path / "live2" / "plots" / "metrics").iterdir())
    assert json.loads((tmp_path / "ckpt2" / "state.json").read_text())["finished"] is True
    first, second = tmp_path / "r1" / "model.safetensors", tmp_path / "r2" / "model.safetensors"
    assert first.read_bytes() == second.read_bytes() and first.stat().st_ino == second.stat().st_ino  # hard link

    samples[3]["messages"][1]["content"] += " (rewritten)"  # refine changed one response: train again
    data = _dataset(tmp_path, samples)
    main(_stage_args(tmp_path, tiny_model_dir, data, "r3", reuse=tmp_path / "r2"))
    trained = json.loads((tmp_path / "r3.json").read_text())
    assert "reused_from" not in trained and trained["steps"] == 2


def test_training_and_scoring_count_the_same_tokens_with_the_same_loss(tiny_model_dir, tmp_path, monkeypatch):
    """The trainer's own batch and loss (TRL's fused head on the labels middo builds) against the score pass; the
    head projects the label positions only, on a CPU too."""
    from trl.trainer import utils as trl_utils

    from middo.model.forward import encode_samples, score_forward
    from middo.model.load import load_model
    from middo.model.sft import GroupedSFTTrainer, LengthGroupedBatches, label_rows, sft_config

    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    samples = sft_samples(6)
    samples[0]["messages"] += [{"role": "user", "content": "and then?"}, {"role": "assistant", "content": "a dog."}]
    rows = encode_samples(tokenizer, samples, 1024)
    args = sft_config(CONFIG, tmp_path, bf16=False, use_cpu=True, progress=False)
    batches = LengthGroupedBatches([len(row) for row in rows], 100_000, None, seed=0)  # one batch of all six
    trainer = GroupedSFTTrainer(model=model, args=args, train_dataset=label_rows(rows), processing_class=tokenizer,
                                batches=batches)  # fmt: skip
    batch = next(iter(trainer.get_train_dataloader()))
    counted = int((batch["labels"][:, 1:] != -100).sum())
    projected = []
    fold = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        lambda hidden, *rest: projected.append(len(hidden)) or fold(hidden, *rest))  # fmt: skip
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), batch)
    assert projected == [counted] and counted < batch["input_ids"][:, 1:].numel() / 2  # prompts and pads skipped
    scored = score_forward(model, tokenizer, samples, token_budget=100_000, embed=False, progress=False)
    assert counted == int(scored.n_tokens.sum())  # both assistant turns of the two-turn sample carry loss
    assert loss.item() * counted == pytest.approx(float((scored.loss * scored.n_tokens).sum()), rel=1e-5)


def test_settings_that_cannot_work_fail_before_any_step(tiny_model_dir, tmp_path, monkeypatch):
    model_config = ModelConfig(base=str(tiny_model_dir), device="cpu")
    cases = [
        (TrainConfig(bf16=True), "train.bf16 is true but training runs on a CPU"),
        (TrainConfig(extra={"learning_rte": 0.1}), "did you mean learning_rate"),
        (TrainConfig(extra={"learning_rate": 0.1}), "set train.lr instead"),
        (TrainConfig(lora=LoraSettings(target_modules=["q_proj", "query"])), "['query'] are not linear modules"),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            train_sft(tiny_model_dir, sft_samples(4), config, model_config, tmp_path / "m", progress=False)
        assert not (tmp_path / "m").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    too_many = "4 training processes on this machine (train.processes) but it has 2 GPU"
    with pytest.raises(ConfigError, match=re.escape(too_many)):
        train_sft(tiny_model_dir, sft_samples(4), TrainConfig(processes=4), ModelConfig(base=str(tiny_model_dir)),
                  tmp_path / "m", progress=False)  # fmt: skip


def test_unknown_train_keys_and_lora_keys_name_the_fix():
    from middo.config import section

    with pytest.raises(ConfigError, match="did you mean train.grad_accum"):
        section(TrainConfig, {"train": {"grad_acum": 2}}, "train")
    with pytest.raises(ConfigError, match="unknown key train.lora.rank"):
        section(TrainConfig, {"train": {"lora": {"rank": 8}}}, "train")
    assert section(TrainConfig, {"train": {"lora": {"r": 8}}}, "train").lora == LoraSettings(r=8)
