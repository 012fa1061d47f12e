"""The gate: every child is checked before it enters D(r); scorers are injected so the logic is testable with fakes.

Checks, in order (the first that fails names the rejection): `empty` (a blank turn), `copy` (same prompt and
response as the parent, up to case and spacing), `duplicate` (its id is already in D(r-1) or among the accepted
children), `near_duplicate` (cosine above `dup_threshold` between prompt embeddings centred on D(r-1)'s mean
embedding, to a sample of D(r-1) or to an accepted child), `signal` (judged by the signal that flagged the parent:
lower loss under M0 for simplify, higher rating for improve, knn_sim below the dataset's mean for synthesize, with
knn_sim as the cluster stage computes it: mean cosine to the k nearest, centred when `cluster.center` is on).
Simplify is scored under M0, which saw neither parent nor child: Mr was trained on the parent, so under Mr the
parent's loss is low for having been learnt and the comparison favours keeping it.
With the gate off only `duplicate` applies: ids must stay unique.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from middo.data.schema import sample_id
from middo.refine.neighbours import CosineIndex
from middo.signals.knn_index import embedding_mean

CHECKS = ("empty", "copy", "duplicate", "near_duplicate", "signal")
Scorer = Callable[[list[dict]], dict[str, float]]
"""Samples (dicts with `id`, `messages`) -> {id: value}; NaN when a value cannot be had."""
Embedder = Callable[[list[dict]], np.ndarray]
"""Samples -> prompt embeddings [N, d] in the same order."""


@dataclass(frozen=True)
class Candidate:
    """A parsed child waiting for the gate."""

    key: str
    op: str
    parent: str
    messages: list[dict]

    @property
    def id(self) -> str:
        """The id the child will have in D(r)."""
        return sample_id(self.messages)


@dataclass
class Verdict:
    """Accepted, or the check that rejected it with a readable detail; the scores computed on the way."""

    accepted: bool = True
    check: str | None = None
    detail: str = ""
    scores: dict = field(default_factory=dict)

    def reject(self, check: str, detail: str) -> Verdict:
        """Mark rejected by `check`."""
        self.accepted, self.check, self.detail = False, check, detail
        return self


@dataclass
class Reference:
    """D(r-1) as the gate sees it: its ids, its prompt embeddings (rows named by `embedding_ids`), its mean
    knn_sim (from the cluster stage) and k, and whether the cluster stage centred its vectors (`cluster.center`:
    the density check then uses the same centred cosines). One faiss index is held at a time."""

    ids: set[str]
    embedding_ids: list[str]
    vectors: np.ndarray
    mean_knn_sim: float
    k: int
    centered: bool = True
    center: np.ndarray = field(init=False)
    _index: tuple[bool, CosineIndex] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.center = embedding_mean(self.vectors)

    def search(self, queries: np.ndarray, k: int, centered: bool) -> tuple[np.ndarray, list[list[str]]]:
        """Cosines to the k nearest samples of D(r-1): raw or centred on D(r-1)'s mean embedding."""
        if self._index is None or self._index[0] != centered:
            self._index = None  # free the other index before building this one
            index = CosineIndex(self.vectors.shape[1], self.center if centered else None)
            index.add(self.embedding_ids, self.vectors)
            self._index = (centered, index)
        return self._index[1].search(queries, k)


@dataclass
class Gate:
    """Reviews a round's children against D(r-1), each other and their parents."""

    reference: Reference
    dup_threshold: float
    loss_fn: Scorer
    """Losses under M0 (a model that saw neither parent nor child), for the simplify check."""
    rate_fn: Scorer
    embed_fn: Embedder
    enabled: bool = True

    def review(self, candidates: list[Candidate], parents: dict[str, list[dict]]) -> list[Verdict]:
        """One verdict per candidate, in order; earlier candidates win near-duplicate ties."""
        verdicts = [Verdict() for _ in candidates]
        for candidate, verdict in zip(candidates, verdicts, strict=True):
            self._static(candidate, parents[candidate.parent], verdict)
        live = [i for i, v in enumerate(verdicts) if v.accepted]
        vectors = self._embed_and_compare(candidates, verdicts, live) if self.enabled else {}
        live = [i for i in live if verdicts[i].accepted]
        if self.enabled:
            self._score_signals(candidates, verdicts, live, parents)
        dim = len(next(iter(vectors.values()))) if vectors else 0
        accepted = CosineIndex(dim, self.reference.center) if vectors else None
        taken: set[str] = set()
        for i in live:
            if self._passes_last_checks(candidates[i], verdicts[i], taken, accepted, vectors.get(i)):
                taken.add(candidates[i].id)
                if accepted is not None:
                    accepted.add([candidates[i].id], vectors[i][None, :])
        return verdicts

    def _passes_last_checks(self, candidate, verdict, taken, accepted, vector) -> bool:
        """Checks that depend on the children accepted before this one, then the signal check."""
        if candidate.id in taken:
            verdict.reject("duplicate", f"same messages as another accepted child ({candidate.id})")
            return False
        if accepted is not None and self._near_accepted(accepted, vector, verdict):
            return False
        return not self.enabled or _signal_ok(candidate.op, verdict, self.reference.mean_knn_sim)

    def _static(self, candidate: Candidate, parent: list[dict], verdict: Verdict) -> None:
        if self.enabled and any(not m["content"].strip() for m in candidate.messages):
            verdict.reject("empty", "a turn of the child is blank")
        elif self.enabled and _normal(candidate.messages) == _normal(parent):
            verdict.reject("copy", "same prompt and response as the parent")
        elif candidate.id in self.reference.ids:
            verdict.reject("duplicate", f"identical to sample {candidate.id} already in the dataset")

    def _embed_and_compare(self, candidates, verdicts, live) -> dict[int, np.ndarray]:
        if not live:
            return {}
        vectors = np.asarray(self.embed_fn([_sample(candidates[i]) for i in live]), dtype=np.float32)
        synth = [row for row, i in enumerate(live) if candidates[i].op == "synthesize"]
        if synth and self.reference.k:
            sims, _ = self.reference.search(vectors[synth], self.reference.k, centered=self.reference.centered)
            for row, sim in zip(synth, sims, strict=True):
                verdicts[live[row]].scores["knn_sim"] = float(sim.mean()) if sim.size else math.nan
        sims, near = self.reference.search(vectors, 1, centered=True)
        for row, i in enumerate(live):
            if sims.shape[1]:
                cosine = float(sims[row, 0])
                verdicts[i].scores.update(max_cos=cosine, nearest=near[row][0])
                if cosine > self.dup_threshold:
                    verdicts[i].reject("near_duplicate", f"centred cosine {cosine:.4f} to {near[row][0]} > "
                                                         f"{self.dup_threshold}")
        return {i: vectors[row] for row, i in enumerate(live)}

    def _near_accepted(self, accepted: CosineIndex, vector: np.ndarray, verdict: Verdict) -> bool:
        sims, near = accepted.search(vector[None, :], 1)
        if sims.shape[1] and sims[0, 0] > self.dup_threshold:
            verdict.reject("near_duplicate", f"centred cosine {sims[0, 0]:.4f} to accepted child {near[0][0]} > "
                                             f"{self.dup_threshold}")
            return True
        return False

    def _score_signals(self, candidates, verdicts, live, parents) -> None:
        for op, scorer, name in (("simplify", self.loss_fn, "loss"), ("improve", self.rate_fn, "quality")):
            chosen = [i for i in live if candidates[i].op == op]
            if not chosen:
                continue
            parent_ids = sorted({candidates[i].parent for i in chosen})
            samples = [_sample(candidates[i]) for i in chosen]
            samples += [{"id": p, "messages": parents[p]} for p in parent_ids]
            values = scorer(samples)
            for i in chosen:
                verdicts[i].scores[name] = float(values[candidates[i].id])
                verdicts[i].scores[f"parent_{name}"] = float(values[candidates[i].parent])


def _signal_ok(op: str, verdict: Verdict, mean_knn_sim: float) -> bool:
    scores = verdict.scores
    if op == "simplify":
        child, parent, better, label = scores["loss"], scores["parent_loss"], "lower", "loss under M0"
        ok = child < parent
    elif op == "improve":
        child, parent, better, label = scores["quality"], scores["parent_quality"], "higher", "judge rating"
        ok = child > parent
    else:
        child, parent, better, label = scores.get("knn_sim", math.nan), mean_knn_sim, "lower", "knn_sim"
        ok = child < parent
    if math.isnan(child) or math.isnan(parent):
        verdict.reject("signal", f"{label} unavailable (child {child:.4g}, reference {parent:.4g})")
        return False
    if not ok:
        reference = "the dataset mean" if op == "synthesize" else "the parent"
        verdict.reject("signal", f"{label} {child:.4g} is not {better} than {reference} ({parent:.4g})")
    return ok


def _normal(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["role"], " ".join(m["content"].split()).casefold()) for m in messages]


def _sample(candidate: Candidate) -> dict:
    return {"id": candidate.id, "messages": candidate.messages}
