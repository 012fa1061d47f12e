"""The refine stage: read D(r-1), flags, neighbours and embeddings; run the round; write D(r) and refine.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from middo.data.schema import read_samples, write_samples
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model.config import ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.gate import Embedder, Gate, Scorer
from middo.refine.merge import attempts_table
from middo.refine.round import RefineResult, build_reference, refine_round
from middo.refine.scorers import ModelScorer, judge_rater
from middo.signals.config import JudgeConfig
from middo.signals.embeddings import load_embeddings
from middo.tables import write_table
from middo.teacher import TeacherConfig, make_teacher

log = get_logger(__name__)


def read_table(path: str | Path, name: str) -> pl.DataFrame:
    """A round table, with an error naming the stage that writes it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no {name} table; run the {name} stage of this round first")
    return pl.read_parquet(path)


@dataclass(frozen=True)
class GateScorers:
    """The gate's three scorers (see `middo.refine.gate`)."""

    loss: Scorer
    rate: Scorer
    embed: Embedder


def model_scorers(model: str | Path, model_cfg: ModelConfig, refine_cfg: RefineConfig, judge_cfg: JudgeConfig,
                  teacher_cfg: TeacherConfig) -> GateScorers:
    """Loss and embeddings under Mr from one forward pass (loaded on first use), ratings from the round's judge."""
    scorer = ModelScorer.from_path(model, refine_cfg.token_budget, model_cfg)
    judge = judge_rater(model, model_cfg, judge_cfg, teacher_cfg)

    def rate(samples: list[dict]) -> dict[str, float]:
        scorer.release()  # the gate rates last; the judge loads its own copy of Mr, so hold one at a time
        return judge(samples)

    return GateScorers(scorer.loss, rate, scorer.embed)


def run_refine(data: str | Path, flags: str | Path, knn: str | Path, embeddings: str | Path, model: str | Path,
               round_number: int, output: str | Path, metrics: str | Path, model_cfg: ModelConfig,
               refine_cfg: RefineConfig, teacher_cfg: TeacherConfig, judge_cfg: JudgeConfig, centered: bool,
               log_path: str | Path | None = None,
               scorers: GateScorers | None = None) -> RefineResult:
    """Write D(r) to `output`, refine.json to `metrics` and, if `log_path`, one row per attempt.

    `centered` is `cluster.center` (the geometry of the knn table). `scorers` replaces the gate's scorers under
    Mr and the judge (tests, or another judge).
    """
    previous = read_samples(data)
    flag_table, knn_table = read_table(flags, "select"), read_table(knn, "cluster")
    embedding_ids, vectors = load_embeddings(embeddings)
    reference = build_reference(previous, embedding_ids, vectors, knn_table, centered)
    scorers = scorers or model_scorers(model, model_cfg, refine_cfg, judge_cfg, teacher_cfg)
    gate = Gate(reference, refine_cfg.dup_threshold, scorers.loss, scorers.rate, scorers.embed, refine_cfg.gate)
    teacher = make_teacher(teacher_cfg)
    try:
        result = refine_round(previous, flag_table, knn_table, teacher, gate, refine_cfg, round_number,
                              teacher_cfg.temperature)
    finally:
        if hasattr(teacher, "close"):
            teacher.close()
    write_samples(result.dataset, output)
    write_metrics(result.metrics, metrics)
    if log_path is not None:
        write_table(attempts_table(result.attempts, round_number), log_path)
    return result
