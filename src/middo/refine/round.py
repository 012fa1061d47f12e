"""One refine round, I/O-free: plan, teacher phases, gate, merge, conservation, metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from middo.log import get_logger
from middo.refine.config import RefineConfig
from middo.refine.conservation import check_conservation
from middo.refine.gate import Candidate, Gate, Reference
from middo.refine.merge import merge_round
from middo.refine.metrics import refine_metrics
from middo.refine.operations import Attempt, plan_tasks, run_teacher
from middo.refine.prompts import RefinePrompts
from middo.tables import join_by_id
from middo.teacher import Teacher

log = get_logger(__name__)


@dataclass
class RefineResult:
    """D(r), one attempt per task (the refine log), and refine.json."""

    dataset: pl.DataFrame
    attempts: list[Attempt]
    metrics: dict


def build_reference(previous: pl.DataFrame, embedding_ids: list[str], vectors: np.ndarray,
                    knn: pl.DataFrame, centered: bool) -> Reference:
    """The gate's view of D(r-1); the embeddings and the knn table must cover its ids 1:1.

    `centered` is the cluster stage's `cluster.center`, so the synthesize density check measures knn_sim the way
    the knn table did."""
    ids = previous.select("id")
    join_by_id(ids, pl.DataFrame({"id": embedding_ids}, schema={"id": pl.Utf8}), "dataset", "embeddings")
    table = join_by_id(ids, knn.select("id", "knn_sim", "neighbor_ids"), "dataset", "knn table")
    sims = table["knn_sim"].cast(pl.Float64).to_numpy()
    mean = float(np.nanmean(sims)) if np.isfinite(sims).any() else math.nan
    k = int(table["neighbor_ids"].list.len().max() or 0)
    return Reference(set(ids["id"].to_list()), list(embedding_ids), vectors, mean, k, centered)


def apply_gate(attempts: list[Attempt], gate: Gate) -> None:
    """Review every attempt that produced a child; set its outcome, check, reason and scores."""
    with_child = [a for a in attempts if a.child is not None]
    candidates = [Candidate(a.task.key, a.task.op, a.task.parent, a.child) for a in with_child]
    parents = {a.task.parent: a.task.messages for a in with_child}
    for attempt, verdict in zip(with_child, gate.review(candidates, parents), strict=True):
        attempt.scores = verdict.scores
        attempt.outcome = "accepted" if verdict.accepted else "rejected"
        if not verdict.accepted:
            attempt.phase, attempt.check, attempt.reason = "gate", verdict.check, f"{verdict.check}: {verdict.detail}"


def refine_round(previous: pl.DataFrame, flags: pl.DataFrame, knn: pl.DataFrame, teacher: Teacher, gate: Gate,
                 config: RefineConfig, round_number: int, temperature: float, prompts: RefinePrompts) -> RefineResult:
    """D(r) from D(r-1): flagged samples rewritten by the teacher, children gated, merged with lineage, checked."""
    tasks = plan_tasks(previous, flags, knn, config)
    log.info("refine round %d: %d operations on %d samples", round_number, len(tasks), len({t.parent for t in tasks}))
    attempts = run_teacher(tasks, teacher, config, temperature, prompts)
    apply_gate(attempts, gate)
    dataset = merge_round(previous, attempts, round_number)
    counts = check_conservation(previous["id"].to_list(), dataset)
    metrics = refine_metrics(attempts, counts, teacher.usage(), config)
    log.info("refine round %d: %s; D(r) has %d samples", round_number, metrics["total"], dataset.height)
    return RefineResult(dataset, attempts, metrics)
