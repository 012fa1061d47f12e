"""SFT on the tiny model: loss goes down, parameters change, same seed gives the same weights, the stage runs."""

from __future__ import annotations

import csv
import json

import polars as pl
import pytest
import torch
import yaml
from conftest import corpus_lines
from safetensors.torch import load_file

from middo.data.schema import sample_id, write_samples
from middo.model.config import ModelConfig, TrainConfig
from middo.model.train import train_sft


def sft_samples(n: int = 48) -> list[dict]:
    samples = []
    for line in corpus_lines(n, seed=3):
        head, _, tail = line.partition(". ")
        messages = [{"role": "user", "content": head + "?"}, {"role": "assistant", "content": tail}]
        samples.append({"id": sample_id(messages), "messages": messages})
    return samples


CONFIG = TrainConfig(epochs=3, lr=3e-3, token_budget=512, grad_accum=2, seed=7)


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    metrics = train_sft(tiny_model_dir, sft_samples(), CONFIG, ModelConfig(base=str(tiny_model_dir)), out / "model",
                        out / "log.csv", progress=False)  # fmt: skip
    return out, metrics


def test_training_lowers_loss_and_changes_parameters(trained, tiny_model_dir):
    out, metrics = trained
    assert metrics["loss_last"] < metrics["loss_first"] - 0.5
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(out / "model" / "model.safetensors")
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) == len(before)
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert len(rows) == metrics["steps"] and {"step", "loss", "lr"} <= rows[0].keys()
    assert (out / "model" / "tokenizer.json").exists() and (out / "model" / "chat_template.jinja").exists()


def test_same_seed_gives_identical_weights(trained, tiny_model_dir, tmp_path):
    out, _ = trained
    train_sft(tiny_model_dir, sft_samples(), CONFIG, ModelConfig(base=str(tiny_model_dir)), tmp_path / "again",
              progress=False)  # fmt: skip
    first = load_file(out / "model" / "model.safetensors")
    second = load_file(tmp_path / "again" / "model.safetensors")
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_train_stage_end_to_end(tiny_model_dir, tmp_path):
    from stages.train import main

    samples = sft_samples(16)
    frame = pl.DataFrame(
        {"id": [s["id"] for s in samples], "messages": [s["messages"] for s in samples], "source": ["t"] * 16,
         "round": [0] * 16, "parent": [None] * 16, "op": ["seed"] * 16, "meta": ["{}"] * 16}  # fmt: skip
    )
    write_samples(frame, tmp_path / "d.parquet")
    params = {"model": {"base": str(tiny_model_dir), "max_length": 64}, "train": {"epochs": 3, "max_steps": 2}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["--data", str(tmp_path / "d.parquet"), "--base", str(tiny_model_dir), "--output", str(tmp_path / "m"),
          "--metrics", str(tmp_path / "m.json"), "--log", str(tmp_path / "log.csv"),
          "--params", str(tmp_path / "params.yaml")])  # fmt: skip
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["steps"] == 2 and metrics["samples"] == 16
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_training_loss_uses_the_same_assistant_targets_as_scoring(tiny_model_dir):
    from middo.model.forward import encode_samples, score_forward
    from middo.model.load import load_model
    from middo.model.loop import batch_nll

    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    samples = sft_samples(6)
    rows = encode_samples(tokenizer, samples, 1024)
    with torch.no_grad():
        total, count = batch_nll(model, rows, tokenizer.pad_token_id)
    scored = score_forward(model, tokenizer, samples, token_budget=100_000, embed=False, progress=False)
    assert count == int(scored.n_tokens.sum())
    assert total.item() == pytest.approx(float((scored.loss * scored.n_tokens).sum()), rel=1e-5)
