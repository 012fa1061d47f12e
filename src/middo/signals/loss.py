"""The score stage: `loss_pre` under M0, `loss_cur` and prompt embeddings under Mr, base losses reused by id."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from middo.data.schema import read_samples
from middo.log import get_logger, write_metrics
from middo.model import forward, load, ranks
from middo.model.config import EmbedConfig, ModelConfig
from middo.signals.base_cache import FINGERPRINT_COLUMN, base_fingerprint, reusable_base_losses
from middo.signals.config import ScoreConfig
from middo.signals.embeddings import save_embeddings
from middo.tables import write_table

log = get_logger(__name__)

COUNTED = ("base_reused", "base_scored", "embed_fallbacks", "seconds_base", "seconds_round")
"""Metrics of one process's share that `score_metrics` combines over the processes."""

SCORES_SCHEMA = {
    "id": pl.Utf8,
    "loss_pre": pl.Float64,
    "loss_cur": pl.Float64,
    "n_tokens": pl.Int64,
    "truncated": pl.Boolean,
    FINGERPRINT_COLUMN: pl.Utf8,
}


@dataclass
class ScoreResult:
    """The scores table (dataset order), the prompt embeddings under Mr (same order), and metrics."""

    table: pl.DataFrame
    embeddings: np.ndarray
    metrics: dict


def _run_forward(model_path: str | Path, model_cfg: ModelConfig, samples: list[dict], budget: int,
                 pooling: EmbedConfig | None, gguf_file: str | None = None) -> forward.ForwardResult:
    model, tokenizer = load.load_model(model_path, gguf_file=gguf_file, device=model_cfg.device, dtype=model_cfg.dtype,
                                       trust_remote_code=model_cfg.trust_remote_code)
    result = forward.score_forward(model, tokenizer, samples, budget, embed=pooling is not None,
                                   max_length=model_cfg.max_length, chat_template=model_cfg.chat_template,
                                   pooling=pooling or EmbedConfig())
    del model
    return result


def _pass(path: str | Path, model_cfg: ModelConfig, score_cfg: ScoreConfig, samples: list[dict],
          pooling: EmbedConfig | None, setting: str, gguf_file: str | None = None) -> forward.ForwardResult:
    """One model's pass: in process (`score.backend: hf`, or a null server `setting`) or on the inference servers."""
    url = getattr(score_cfg, setting.removeprefix("score."))
    if score_cfg.backend == "server" and url:
        from middo.signals.loss_server import server_forward

        return server_forward(path, model_cfg, score_cfg, samples, url, setting, pooling, gguf_file)
    return _run_forward(path, model_cfg, samples, score_cfg.token_budget, pooling, gguf_file=gguf_file)


def _stats(values: np.ndarray, name: str) -> dict:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {f"{name}_nan": int(len(values))}
    summary = {"mean": finite.mean(), "std": finite.std(), "min": finite.min(), "max": finite.max()}
    return {**{f"{name}_{key}": float(value) for key, value in summary.items()},
            f"{name}_nan": int(len(values) - len(finite))}


def score_samples(samples: list[dict], base: str | Path, model: str | Path, model_cfg: ModelConfig,
                  score_cfg: ScoreConfig, pooling: EmbedConfig, reuse: str | Path | None = None) -> ScoreResult:
    """Losses of `samples` (dicts with `id`, `messages`) under the base model and the round model, and the prompt
    embeddings under the round model (pooled as `pooling` says).

    Base losses found in `reuse` (a previous scores table, same base fingerprint) are not recomputed; when every
    sample is found, the base model is not even loaded.
    """
    ids = [sample["id"] for sample in samples]
    settings = {"max_length": model_cfg.max_length, "chat_template": model_cfg.chat_template, "dtype": model_cfg.dtype}
    fingerprint = base_fingerprint(base, model_cfg.gguf_file, settings)
    cached = reusable_base_losses(reuse, fingerprint, ids) if score_cfg.reuse_base else {}
    todo = [sample for sample in samples if sample["id"] not in cached]
    started = time.perf_counter()
    loss_pre = dict(cached)
    if todo:
        log.info("base model: scoring %d samples (%d reused by id)", len(todo), len(cached))
        pre = _pass(base, model_cfg, score_cfg, todo, None, "score.base_server_url", gguf_file=model_cfg.gguf_file)
        loss_pre.update(zip(pre.ids, pre.loss.tolist(), strict=True))
    else:
        log.info("base model: all %d base losses reused by id; not loaded", len(samples))
    base_seconds = time.perf_counter() - started
    cur = _pass(model, model_cfg, score_cfg, samples, pooling, "score.server_url")
    round_seconds = time.perf_counter() - started - base_seconds
    table = pl.DataFrame(
        {
            "id": ids,
            "loss_pre": [loss_pre[sample_id] for sample_id in ids],
            "loss_cur": cur.loss,
            "n_tokens": cur.n_tokens,
            "truncated": cur.truncated_mask,
            FINGERPRINT_COLUMN: [fingerprint] * len(ids),
        },
        schema=SCORES_SCHEMA,
    )
    counts = {"base_reused": len(cached), "base_scored": len(todo), "embed_fallbacks": cur.embed_fallbacks,
              "seconds_base": base_seconds, "seconds_round": round_seconds}  # fmt: skip
    return ScoreResult(table, cur.embeddings, score_metrics(table, pooling, [counts]))


def score_metrics(table: pl.DataFrame, pooling: EmbedConfig, counts: list[dict]) -> dict:
    """The metrics of a scores table; `counts` holds each process's reuse counts and seconds (summed, and the
    slowest process's seconds)."""
    seconds_base = max(part["seconds_base"] for part in counts)
    seconds_round = max(part["seconds_round"] for part in counts)
    return {
        "samples": len(table),
        "processes": len(counts),
        "base_reused": sum(part["base_reused"] for part in counts),
        "base_scored": sum(part["base_scored"] for part in counts),
        "truncated": int(table["truncated"].sum()),
        "embed_pool": pooling.pool,
        "embed_fallbacks": sum(part["embed_fallbacks"] for part in counts),
        "seconds_base": seconds_base,
        "seconds_round": seconds_round,
        "seconds": max(part["seconds_base"] + part["seconds_round"] for part in counts),
        "tokens_scored": int(table["n_tokens"].sum()),
        **_stats(table["loss_pre"].to_numpy(), "loss_pre"),
        **_stats(table["loss_cur"].to_numpy(), "loss_cur"),
    }


def gather_scores(part: ScoreResult, order: list[str], pooling: EmbedConfig, state) -> ScoreResult | None:
    """Every process's share of the scores on process 0, in the dataset order `order`; None on the others."""
    counts = ranks.gather({key: part.metrics[key] for key in COUNTED}, state)
    gathered = ranks.gather_table(part.table, order, state, "scores", {"embedding": part.embeddings})
    if gathered is None:
        return None
    table, arrays = gathered
    return ScoreResult(table, arrays["embedding"], score_metrics(table, pooling, counts))


@dataclass(frozen=True)
class ScorePaths:
    """Files of the score stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    base: str
    """Base model M0 (dir, hub id or .gguf)."""
    model: Path
    """Round model Mr (dir)."""
    output: Path
    """Scores table to write (Parquet)."""
    embeddings: Path
    """Directory for the prompt embeddings under Mr."""
    metrics: Path
    """Metrics JSON to write."""
    reuse: Path | None = None
    """Previous round's scores table: base losses reused by id."""


def run_score(paths: ScorePaths, model_cfg: ModelConfig, score_cfg: ScoreConfig,
              pooling: EmbedConfig) -> ScoreResult | None:
    """Read the dataset, score it, write the scores table, the embeddings and the metrics JSON.

    Under a data-parallel launcher each process scores a length-balanced share and process 0 writes the tables of
    all of them (`middo.model.ranks`); the other processes return None."""
    frame = read_samples(paths.data)
    samples = frame.select("id", "messages").to_dicts()
    state = ranks.start(model_cfg.device)
    mine = ranks.shard(samples, state)
    part = score_samples(mine, paths.base, paths.model, ranks.on_rank_device(model_cfg, state), score_cfg, pooling,
                         paths.reuse)  # fmt: skip
    result = gather_scores(part, [sample["id"] for sample in samples], pooling, state)
    ranks.stop(state)
    if result is None:
        return None
    write_table(result.table, paths.output)
    save_embeddings(paths.embeddings, result.table["id"].to_list(), result.embeddings)
    write_metrics(result.metrics, paths.metrics)
    log.info("scored %d samples in %.1fs on %d process(es) (%d base losses reused)", len(samples),
             result.metrics["seconds"], result.metrics["processes"], result.metrics["base_reused"])
    return result
