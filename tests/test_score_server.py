"""`score.backend: server`: losses and embeddings from vLLM-shaped servers equal the in-process (hf) path; bad
servers are refused with errors that name the setting to fix."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import corpus_lines, stage_error
from judge_helpers import make_samples
from model_server import ModelServer
from transformers import AutoModelForCausalLM, AutoTokenizer

from middo.data.schema import SAMPLE_SCHEMA, sample_id
from middo.errors import ConfigError
from middo.model import load
from middo.model.config import EmbedConfig, ModelConfig
from middo.model.forward import score_forward
from middo.model.tokenizer import train_tokenizer
from middo.signals.config import ScoreConfig
from middo.signals.embed_server import pooled_runs
from middo.signals.embeddings import load_embeddings
from middo.signals.loss import score_samples
from middo.signals.loss_server import server_forward
from middo.signals.score_server import ServerError

MAX_LENGTH = 48  # short enough that some samples are cut, so truncation is compared too


def _samples() -> list[dict]:
    messages = [{"role": "system", "content": "be brief."}, {"role": "user", "content": "the cat sees a dog."},
                {"role": "assistant", "content": "a dog."}, {"role": "user", "content": "and the river?"},
                {"role": "assistant", "content": "the river likes a house."}]
    return [*make_samples(9), {"id": sample_id(messages), "messages": messages}]


@pytest.fixture(scope="module")
def round_model(tiny_model_dir, tmp_path_factory):
    """A round model r1: the tiny base with every weight perturbed (losses and states differ from the base's)."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    out = tmp_path_factory.mktemp("models") / "r1"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _server_cfg(generate: ModelServer, embed: ModelServer, base: ModelServer | None = None, **kwargs) -> ScoreConfig:
    return ScoreConfig(token_budget=2048, backend="server", server_url=generate.url, embed_url=embed.url,
                       base_server_url=base.url if base else None, concurrency=4, max_retries=0, **kwargs)


def _hf(path, samples, pooling=EmbedConfig()):
    model, tokenizer = load.load_model(path, device="cpu")
    return score_forward(model, tokenizer, samples, 100_000, max_length=MAX_LENGTH, progress=False, pooling=pooling)


@pytest.mark.parametrize("logprobs", ["prompt_logprobs", "echo"])
def test_server_backend_equals_hf_backend(tiny_model_dir, round_model, logprobs):
    samples = _samples()
    model_cfg = ModelConfig(base=str(tiny_model_dir), device="cpu", max_length=MAX_LENGTH)
    hf = score_samples(samples, tiny_model_dir, round_model, model_cfg, ScoreConfig(token_budget=2048), EmbedConfig())
    with ModelServer(tiny_model_dir) as base, ModelServer(round_model) as current:
        cfg = _server_cfg(current, current, base, logprobs=logprobs)
        served = score_samples(samples, tiny_model_dir, round_model, model_cfg, cfg, EmbedConfig())
    for column in ("loss_pre", "loss_cur"):
        np.testing.assert_allclose(served.table[column].to_numpy(), hf.table[column].to_numpy(), rtol=0, atol=1e-4)
    assert served.table["n_tokens"].to_list() == hf.table["n_tokens"].to_list()
    assert served.table["truncated"].to_list() == hf.table["truncated"].to_list()
    assert served.table["truncated"].any() and not served.table["truncated"].all()
    np.testing.assert_allclose(served.embeddings, hf.embeddings, rtol=0, atol=1e-4)
    assert not np.allclose(hf.table["loss_pre"].to_numpy(), hf.table["loss_cur"].to_numpy(), atol=1e-2)
    kind = "prompt_logprobs" if logprobs == "prompt_logprobs" else "echo"
    assert all(kind in body for body in current.bodies if "prompt" in body)


@pytest.mark.parametrize("pool", ["user", "last_user", "prompt", "raw"])
def test_server_embeddings_equal_hf_for_every_pool(round_model, pool):
    samples, pooling = _samples(), EmbedConfig(pool=pool, system=pool != "prompt")
    expected = _hf(round_model, samples, pooling)
    model_cfg = ModelConfig(base=str(round_model), device="cpu", max_length=MAX_LENGTH)
    with ModelServer(round_model) as server:
        got = server_forward(round_model, model_cfg, _server_cfg(server, server), samples, server.url,
                             "score.server_url", pooling)
    np.testing.assert_allclose(got.embeddings, expected.embeddings, rtol=0, atol=1e-4)
    np.testing.assert_allclose(got.loss, expected.loss, rtol=0, atol=1e-4)
    assert got.embed_fallbacks == expected.embed_fallbacks


def test_score_stage_on_servers(tiny_model_dir, round_model, tmp_path, capsys):
    from stages.score import main

    samples = _samples()
    data = tmp_path / "dataset.parquet"
    rows = [{**s, "source": "t", "round": 0, "parent": None, "op": "seed", "meta": "{}"} for s in samples]
    pl.DataFrame(rows, schema=SAMPLE_SCHEMA).write_parquet(data)
    out, params = tmp_path / "r1", tmp_path / "params.yaml"
    argv = ["--data", str(data), "--base", str(tiny_model_dir), "--model", str(round_model), "--output",
            str(out / "scores.parquet"), "--embeddings", str(out / "emb"), "--metrics", str(out / "score.json"),
            "--params", str(params)]
    for prompt_logprobs in (False, True):  # the refused run first: the files read below are the second run's
        with ModelServer(round_model, prompt_logprobs=prompt_logprobs) as server:
            score = {"backend": "server", "server_url": server.url, "embed_url": server.url}
            params.write_text(yaml.safe_dump({"model": {"base": str(tiny_model_dir), "device": "cpu",
                                                        "max_length": MAX_LENGTH}, "score": score}))
            if prompt_logprobs:
                main(argv)
            else:
                assert "set score.logprobs: echo" in stage_error(capsys, main, argv)
    expected_base, expected = _hf(tiny_model_dir, samples), _hf(round_model, samples)
    scores = pl.read_parquet(out / "scores.parquet")
    np.testing.assert_allclose(scores["loss_cur"].to_numpy(), expected.loss, rtol=0, atol=1e-4)
    np.testing.assert_allclose(scores["loss_pre"].to_numpy(), expected_base.loss, rtol=0, atol=1e-5)  # in process
    ids, vectors = load_embeddings(out / "emb")
    assert ids == [sample["id"] for sample in samples]
    np.testing.assert_allclose(vectors, expected.embeddings, rtol=0, atol=1e-4)

def _run(model_dir, server_kwargs=None, embed_kwargs=None, **cfg):
    model_cfg = ModelConfig(base=str(model_dir), device="cpu", max_length=MAX_LENGTH)
    with ModelServer(model_dir, **(server_kwargs or {})) as generate, \
            ModelServer(model_dir, **(embed_kwargs or {})) as embed:
        return server_forward(model_dir, model_cfg, _server_cfg(generate, embed, **cfg), _samples()[:3],
                              generate.url, "score.server_url", EmbedConfig())


def test_a_server_without_prompt_logprobs_names_the_setting(round_model):
    with pytest.raises(ServerError, match=r"no prompt log-probabilities .*set score\.logprobs: echo"):
        _run(round_model, server_kwargs={"prompt_logprobs": False})
    assert np.isfinite(_run(round_model, server_kwargs={"prompt_logprobs": False}, logprobs="echo").loss).all()


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory):
    """A tokenizer trained on other text: same kind, different merges."""
    lines = [line[::-1] for line in corpus_lines(600, seed=7)]
    out = tmp_path_factory.mktemp("other_tokenizer")
    train_tokenizer(lines, 400).save_pretrained(out)
    return out


@pytest.mark.parametrize("logprobs", ["prompt_logprobs", "echo"])
def test_a_server_with_another_tokenizer_is_refused(round_model, other_tokenizer, logprobs):
    with pytest.raises(ConfigError, match=r"score\.server_url .*tokenises text differently.*model\.base"):
        _run(round_model, server_kwargs={"tokenizer_dir": other_tokenizer}, logprobs=logprobs)


def test_a_server_of_another_model_is_refused(round_model):
    with pytest.raises(ConfigError, match=r"score\.server_url = .* serves \['models/r0'\].*vllm serve"):
        _run(round_model, server_kwargs={"name": "models/r0"})


def test_an_embedding_server_with_another_dimension_is_refused(round_model):
    with pytest.raises(ConfigError, match=r"score\.embed_url = .* 16-dimensional .*hidden size is 128"):
        _run(round_model, embed_kwargs={"dims": 16})


def test_a_normalising_embedding_server_is_refused(round_model):
    with pytest.raises(ConfigError, match=r"score\.embed_url = .*unit-norm.*normalize"):
        _run(round_model, embed_kwargs={"normalize": True})


def test_server_backend_settings_are_checked():
    with pytest.raises(ConfigError, match=r"score\.server_url is not set"):
        ScoreConfig(backend="server", embed_url="http://127.0.0.1:8001/v1")
    with pytest.raises(ConfigError, match=r"score\.embed_url is not set"):
        ScoreConfig(backend="server", server_url="http://127.0.0.1:8000/v1")
    with pytest.raises(ConfigError, match=r"score\.server_url = '127\.0\.0\.1:8000'"):
        ScoreConfig(backend="server", server_url="127.0.0.1:8000", embed_url="http://127.0.0.1:8001/v1")
    with pytest.raises(ConfigError, match=r"score\.concurrency = 0"):
        ScoreConfig(concurrency=0)


def test_a_remote_server_needs_the_key_variable(round_model, monkeypatch):
    monkeypatch.delenv("MIDDO_SCORE_API_KEY", raising=False)
    cfg = ScoreConfig(backend="server", server_url="http://scorer.invalid:8000/v1", embed_url="http://e.invalid/v1")
    model_cfg = ModelConfig(base=str(round_model), device="cpu", max_length=MAX_LENGTH)
    with pytest.raises(ConfigError, match="MIDDO_SCORE_API_KEY is not set"):
        server_forward(round_model, model_cfg, cfg, _samples()[:1], cfg.server_url, "score.server_url")


def test_pooled_runs():
    assert pooled_runs([False, True, True, False, True]) == [(1, 3), (4, 5)]
    assert pooled_runs([True, True]) == [(0, 2)]
    assert pooled_runs([False]) == []
