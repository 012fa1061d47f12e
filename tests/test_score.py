"""The score stage: losses under M0 and Mr, embeddings from the Mr pass, base losses reused by id."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest
import yaml
from judge_helpers import make_samples, trained_judge

from middo.data.schema import SAMPLE_SCHEMA
from middo.model import forward, load
from middo.model.config import EmbedConfig, ModelConfig
from middo.model.forward import score_forward
from middo.signals.base_cache import FINGERPRINT_COLUMN
from middo.signals.config import ScoreConfig
from middo.signals.embeddings import load_embeddings
from middo.signals.loss import score_samples
from middo.tables import join_by_id

SCORE = ScoreConfig(token_budget=2048)
POOL = EmbedConfig()


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    """(M0, Mr): the tiny base model and a copy fine-tuned with train_sft."""
    return tiny_model_dir, trained_judge(tiny_model_dir, "7", tmp_path_factory.mktemp("judge7"))


@pytest.fixture
def counted(monkeypatch):
    """Record every forward pass (model path, sample ids) and model load made by the score stage."""
    calls = {"forward": [], "load": []}
    real_forward, real_load = forward.score_forward, load.load_model

    def load_spy(path, *args, **kwargs):
        calls["load"].append(str(path))
        model, tokenizer = real_load(path, *args, **kwargs)
        model.middo_path = str(path)
        return model, tokenizer

    def forward_spy(model, tokenizer, samples, *args, **kwargs):
        calls["forward"].append((model.middo_path, [s["id"] for s in samples]))
        return real_forward(model, tokenizer, samples, *args, **kwargs)

    monkeypatch.setattr(load, "load_model", load_spy)
    monkeypatch.setattr(forward, "score_forward", forward_spy)
    return calls


def _cfg(base) -> ModelConfig:
    return ModelConfig(base=str(base), device="cpu", max_length=256)


def test_losses_and_embeddings_match_plain_forward_passes(models):
    base, current = models
    samples = make_samples(9)
    result = score_samples(samples, base, current, _cfg(base), SCORE, POOL)
    assert result.table["id"].to_list() == [s["id"] for s in samples]
    expected = {}
    for path in (base, current):
        model, tokenizer = load.load_model(path, device="cpu")
        expected[path] = score_forward(model, tokenizer, samples, 100_000, max_length=256, progress=False)
    np.testing.assert_allclose(result.table["loss_pre"].to_numpy(), expected[base].loss, atol=1e-5)
    np.testing.assert_allclose(result.table["loss_cur"].to_numpy(), expected[current].loss, atol=1e-5)
    np.testing.assert_allclose(result.embeddings, expected[current].embeddings, atol=1e-4)
    assert not np.allclose(result.table["loss_pre"].to_numpy(), result.table["loss_cur"].to_numpy())
    assert result.table["n_tokens"].to_list() == expected[current].n_tokens.tolist()
    assert result.metrics["base_reused"] == 0 and result.metrics["base_scored"] == 9


def test_base_losses_are_reused_by_id_and_skip_the_forward_pass(models, counted, tmp_path):
    base, current = models
    samples = make_samples(8)
    first = score_samples(samples[:6], base, current, _cfg(base), SCORE, POOL)
    previous = tmp_path / "scores.parquet"
    first.table.write_parquet(previous)
    counted["forward"].clear(), counted["load"].clear()

    second = score_samples(samples[2:], base, current, _cfg(base), SCORE, POOL, reuse=previous)  # 4 known, 2 new
    assert counted["forward"] == [(str(base), [s["id"] for s in samples[6:]]),
                                  (str(current), [s["id"] for s in samples[2:]])]
    assert second.metrics["base_reused"] == 4 and second.metrics["base_scored"] == 2
    known = first.table.filter(pl.col("id").is_in([s["id"] for s in samples[2:6]]))
    np.testing.assert_array_equal(second.table["loss_pre"].to_numpy()[:4], known["loss_pre"].to_numpy())

    counted["forward"].clear(), counted["load"].clear()
    third = score_samples(samples[:6], base, current, _cfg(base), SCORE, POOL, reuse=previous)  # all known
    assert counted["load"] == [str(current)] and [path for path, _ in counted["forward"]] == [str(current)]
    np.testing.assert_array_equal(third.table["loss_pre"].to_numpy(), first.table["loss_pre"].to_numpy())


def test_no_reuse_under_another_base_model(models, counted, tmp_path):
    base, current = models
    samples = make_samples(4)
    first = score_samples(samples, base, current, _cfg(base), SCORE, POOL)
    previous = tmp_path / "scores.parquet"
    first.table.write_parquet(previous)
    other_base = tmp_path / "other_base"
    shutil.copytree(base, other_base)
    shutil.copy(current / "model.safetensors", other_base / "model.safetensors")  # same files, other weights
    counted["forward"].clear()
    again = score_samples(samples, other_base, current, _cfg(other_base), SCORE, POOL, reuse=previous)
    assert again.metrics["base_reused"] == 0 and len(counted["forward"]) == 2
    assert again.table[FINGERPRINT_COLUMN][0] != first.table[FINGERPRINT_COLUMN][0]
    longer_cfg = ModelConfig(base=str(base), device="cpu", max_length=512)
    longer = score_samples(samples, base, current, longer_cfg, SCORE, POOL,
                           reuse=previous)  # tokenisation settings are part of the fingerprint
    assert longer.metrics["base_reused"] == 0
    unchanged = score_samples(samples, base, current, _cfg(base), ScoreConfig(reuse_base=False), POOL, reuse=previous)
    assert unchanged.metrics["base_reused"] == 0


def test_score_stage_writes_tables_that_join_the_dataset(models, tmp_path):
    from stages.score import main

    base, current = models
    samples = make_samples(5)
    data = tmp_path / "dataset.parquet"
    rows = [{**s, "source": "t", "round": 0, "parent": None, "op": "seed", "meta": "{}"} for s in samples]
    pl.DataFrame(rows, schema=SAMPLE_SCHEMA).write_parquet(data)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"model": {"base": str(base), "device": "cpu", "max_length": 256},
                                      "score": {"token_budget": 1024, "reuse_base": True}}))
    out = tmp_path / "r1"
    argv = ["--data", str(data), "--base", str(base), "--model", str(current), "--output", str(out / "scores.parquet"),
            "--embeddings", str(out / "emb"), "--metrics", str(out / "score.json"), "--params", str(params)]
    main(argv)
    scores = pl.read_parquet(out / "scores.parquet")
    assert {"id", "loss_pre", "loss_cur", "n_tokens", "truncated"} <= set(scores.columns)
    joined = join_by_id(pl.read_parquet(data), scores, "dataset", "scores")
    assert len(joined) == 5
    ids, vectors = load_embeddings(out / "emb")
    assert ids == scores["id"].to_list() and vectors.shape[0] == 5
    main([*argv[:-2], "--reuse", str(out / "scores.parquet"), "--output", str(tmp_path / "r2.parquet"),
          "--params", str(params)])
    assert '"base_reused": 5' in (out / "score.json").read_text()
