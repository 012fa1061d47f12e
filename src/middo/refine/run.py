"""The refine stage: read D(r-1), flags, neighbours and embeddings; run the round; write D(r) and refine.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from middo.data.schema import read_samples, write_samples
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.contract import resolve_reply_format
from middo.refine.gate import Embedder, Gate, Scorer
from middo.refine.merge import attempts_table
from middo.refine.prompts import load_refine_prompts
from middo.refine.round import RefineResult, build_reference, refine_round
from middo.refine.scorers import ModelScorer, judge_rater
from middo.signals.embeddings import load_embeddings
from middo.signals.judge import Judge
from middo.tables import read_table, write_table
from middo.teacher import Teacher

log = get_logger(__name__)


@dataclass(frozen=True)
class RefinePaths:
    """Files of the refine stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    flags: Path
    """Flags table of the round (Parquet)."""
    knn: Path
    """Neighbours table of the round (Parquet)."""
    embeddings: Path
    """Prompt embeddings of D(r-1) under Mr (directory)."""
    base: str
    """Base model M0 (dir, hub id or .gguf): the gate compares the losses of a simplified child and its parent
    under it, since Mr was trained on the parent and never saw the child."""
    model: Path
    """Round model Mr (dir): child embeddings, and the judge in its local modes."""
    round: int
    """Round number r (written to new samples)."""
    output: Path
    """Dataset D(r) to write (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""
    log: Path | None = None
    """Optional refine log to write: one row per attempt (Parquet)."""


@dataclass(frozen=True)
class GateScorers:
    """The gate's three scorers (see `middo.refine.gate`)."""

    loss: Scorer
    rate: Scorer
    embed: Embedder


def model_scorers(model_cfg: ModelConfig, refine_cfg: RefineConfig, judge: Judge, pooling: EmbedConfig,
                  base: str | Path) -> GateScorers:
    """Embeddings under Mr (pooled as the score stage pools them), losses under M0 at `base` (or under Mr with
    `refine.gate_loss_model: round`), ratings from the round's judge; each model is loaded on first use and one is
    held at a time."""
    current = ModelScorer.from_path(judge.model_path, refine_cfg.token_budget, model_cfg, pooling)
    if refine_cfg.gate_loss_model == "round":
        original = ModelScorer.from_path(judge.model_path, refine_cfg.token_budget, model_cfg, None)
    else:
        original = ModelScorer.from_path(base, refine_cfg.token_budget, model_cfg, None, gguf_file=model_cfg.gguf_file)
    rate_with_judge = judge_rater(judge)

    def loss(samples: list[dict]) -> dict[str, float]:
        current.release()  # the gate embeds first, then scores losses, then rates
        return original.loss(samples)

    def rate(samples: list[dict]) -> dict[str, float]:
        current.release()
        original.release()  # a local judge loads its own copy of Mr
        return rate_with_judge(samples)

    return GateScorers(loss, rate, current.embed)


def run_refine(paths: RefinePaths, teacher: Teacher, refine_cfg: RefineConfig, judge: Judge, centered: bool,
               temperature: float, pooling: EmbedConfig, scorers: GateScorers | None = None) -> RefineResult:
    """Write D(r), refine.json and, if `paths.log`, one row per attempt.

    `teacher` answers the refine requests and, when `judge.teacher` is the same object, the gate's ratings too, so
    its usage in refine.json counts every request of the stage. `centered` is `cluster.center` (the geometry of the
    knn table); `temperature` is `teacher.temperature`; `pooling` is the `embed` section (the gate's embeddings must
    be pooled like the score stage's). `scorers` replaces the gate's scorers (tests).
    """
    if paths.round < 1:
        raise InputError(f"--round {paths.round}: rounds count from 1 (round 0 is the seed set)")
    backend = getattr(getattr(teacher, "cfg", None), "backend", "")  # `auto` follows the teacher's backend
    reply_format = resolve_reply_format(refine_cfg.reply_format, backend)
    prompts = load_refine_prompts(refine_cfg.prompts, refine_cfg.show_response, refine_cfg.answer_style, reply_format)
    previous = read_samples(paths.data)
    flag_table, knn_table = read_table(paths.flags, "select"), read_table(paths.knn, "cluster")
    embedding_ids, vectors = load_embeddings(paths.embeddings)
    reference = build_reference(previous, embedding_ids, vectors, knn_table, centered)
    scorers = scorers or model_scorers(judge.model_cfg, refine_cfg, judge, pooling, paths.base)
    gate = Gate(reference, refine_cfg.dup_threshold, scorers.loss, scorers.rate, scorers.embed, refine_cfg.gate)
    result = refine_round(previous, flag_table, knn_table, teacher, gate, refine_cfg, paths.round, temperature,
                          prompts)
    write_samples(result.dataset, paths.output)
    write_metrics(result.metrics, paths.metrics)
    if paths.log is not None:
        write_table(attempts_table(result.attempts, paths.round), paths.log)
    return result
