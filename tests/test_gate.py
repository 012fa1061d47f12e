"""The gate with simple fake scorers: every check accepts a good child and rejects a bad one, by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from middo.refine.gate import Candidate, Gate, Reference

PARENT = [{"role": "user", "content": "Add 17 and 25 then double it."}, {"role": "assistant", "content": "84"}]
OTHER = [{"role": "user", "content": "Name a red fruit."}, {"role": "assistant", "content": "Apple."}]


def chat(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class Fakes:
    """Embeddings, losses and ratings looked up by prompt text; every call is recorded."""

    def __init__(self, vectors: dict[str, np.ndarray], losses: dict[str, float], ratings: dict[str, float]):
        self.vectors, self.losses, self.ratings = vectors, losses, ratings
        self.calls: list[tuple[str, int]] = []

    def embed(self, samples):
        self.calls.append(("embed", len(samples)))
        return np.stack([self.vectors[s["messages"][0]["content"]] for s in samples])

    def loss(self, samples):
        self.calls.append(("loss", len(samples)))
        return {s["id"]: self.losses[s["messages"][0]["content"]] for s in samples}

    def rate(self, samples):
        self.calls.append(("rate", len(samples)))
        return {s["id"]: self.ratings[s["messages"][0]["content"]] for s in samples}


def make_gate(fakes: Fakes, enabled: bool = True, dup: float = 0.95) -> Gate:
    from middo.data.schema import sample_id

    ids = [sample_id(PARENT), sample_id(OTHER), "c" * 16, "d" * 16]
    vectors = np.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(-1, 0, 0, 0), unit(0, -1, 0, 0)])  # mean 0
    reference = Reference(set(ids), ids, vectors, mean_knn_sim=0.5, k=1)
    return Gate(reference, dup, fakes.loss, fakes.rate, fakes.embed, enabled=enabled)


def review(gate: Gate, *candidates: Candidate):
    from middo.data.schema import sample_id

    parents = {sample_id(PARENT): PARENT}
    return gate.review(list(candidates), parents)


def candidate(op: str, prompt: str, response: str = "ok", key: str | None = None) -> Candidate:
    from middo.data.schema import sample_id

    return Candidate(key or f"{op}:{prompt}", op, sample_id(PARENT), chat(prompt, response))


def test_accepts_children_better_on_their_signal():
    fakes = Fakes(
        vectors={"Add 17 and 25.": unit(1, 1, 0, 0), "Explain it.": unit(1, 0, 1, 0),
                 "New: count legs.": unit(0, 0, 1, 1), PARENT[0]["content"]: unit(1, 0, 0, 0)},
        losses={"Add 17 and 25.": 1.0, PARENT[0]["content"]: 2.5},
        ratings={"Explain it.": 8.0, PARENT[0]["content"]: 3.0},
    )
    verdicts = review(make_gate(fakes), candidate("simplify", "Add 17 and 25.", "42"),
                      candidate("improve", "Explain it.", "Because."), candidate("synthesize", "New: count legs."))
    assert [v.accepted for v in verdicts] == [True, True, True]
    assert verdicts[0].scores["loss"] == 1.0 and verdicts[0].scores["parent_loss"] == 2.5
    assert verdicts[1].scores["quality"] == 8.0 and verdicts[1].scores["parent_quality"] == 3.0
    assert verdicts[2].scores["knn_sim"] < 0.5
    # one batched call per scorer: embeddings of all 3, losses of child + parent, ratings of child + parent
    assert sorted(fakes.calls) == [("embed", 3), ("loss", 2), ("rate", 2)]


def test_rejects_each_failed_check_by_name():
    fakes = Fakes(
        vectors={"Add 17 and 25.": unit(1, 1, 0, 0), "Harder now.": unit(1, 0, 1, 0), "Worse.": unit(0, 0, 1, 0),
                 "Near copy.": unit(1, 0.05, 0, 0), "Dense: fruit.": unit(0, 1, 0, 0.6)},
        losses={"Harder now.": 3.0, PARENT[0]["content"]: 2.5},
        ratings={"Worse.": 2.0, PARENT[0]["content"]: 3.0},
    )
    verdicts = review(
        make_gate(fakes),
        candidate("simplify", "  "),  # empty
        candidate("improve", " add 17 AND 25  then double it. ", "84"),  # a copy up to case and spacing
        candidate("synthesize", OTHER[0]["content"], OTHER[1]["content"]),  # identical to a sample of D(r-1)
        candidate("synthesize", "Near copy."),  # cosine 0.9988 to PARENT's vector
        candidate("simplify", "Harder now."),  # loss 3.0 not below 2.5
        candidate("improve", "Worse."),  # rating 2 not above 3
        candidate("synthesize", "Dense: fruit."),  # knn_sim 0.86 not below the mean 0.5
    )
    assert [v.check for v in verdicts] == ["empty", "copy", "duplicate", "near_duplicate", "signal", "signal",
                                           "signal"]
    assert not any(v.accepted for v in verdicts)
    assert "cosine 0.99" in verdicts[3].detail and "> 0.95" in verdicts[3].detail
    assert "loss under M0 3 is not lower than the parent (2.5)" in verdicts[4].detail


def test_children_are_checked_against_each_other():
    fakes = Fakes(vectors={"Count legs.": unit(0, 0, 1, 1), "Count the legs.": unit(0, 0, 1, 1.02)}, losses={},
                  ratings={})
    first, twin, same = (candidate("synthesize", "Count legs.", key="a"), candidate("synthesize", "Count the legs."),
                         candidate("synthesize", "Count legs.", key="b"))
    verdicts = review(make_gate(fakes), first, twin, same)
    assert [v.check for v in verdicts] == [None, "near_duplicate", "duplicate"]
    assert "accepted child" in verdicts[1].detail


def test_nan_scores_reject_instead_of_passing():
    fakes = Fakes(vectors={"Explain it.": unit(1, 0, 1, 0)}, losses={}, ratings={"Explain it.": math.nan,
                                                                                 PARENT[0]["content"]: 3.0})
    (verdict,) = review(make_gate(fakes), candidate("improve", "Explain it."))
    assert verdict.check == "signal" and "unavailable" in verdict.detail


def test_gate_off_accepts_every_parsed_child_but_keeps_ids_unique():
    fakes = Fakes(vectors={}, losses={}, ratings={})
    verdicts = review(make_gate(fakes, enabled=False), candidate("simplify", "Harder now."),
                      candidate("synthesize", OTHER[0]["content"], OTHER[1]["content"]),
                      candidate("improve", "Harder now.", key="again"))
    assert [v.check for v in verdicts] == [None, "duplicate", "duplicate"]
    assert fakes.calls == []  # the control arm scores nothing


def test_near_duplicates_are_judged_after_removing_the_common_direction():
    from middo.data.schema import sample_id

    base = np.array([10, 0, 0, 0], dtype=np.float32)  # every embedding shares it: raw cosines are all near 1
    ids = [sample_id(PARENT), "b" * 16, "c" * 16, "d" * 16]
    vectors = np.stack([base + d for d in np.eye(4, dtype=np.float32)[[1, 1, 2, 2]] * [[1], [-1], [1], [-1]]])
    reference = Reference(set(ids), ids, vectors, mean_knn_sim=1.0, k=2)
    fakes = Fakes(vectors={"Apart.": base + [0, 0.9, 0.1, 0], "Close.": base + [0, 1, 0.01, 0]}, losses={},
                  ratings={})
    gate = Gate(reference, 0.995, fakes.loss, fakes.rate, fakes.embed)
    apart, close = review(gate, candidate("synthesize", "Apart."), candidate("synthesize", "Close."))
    assert apart.accepted and apart.scores["max_cos"] == pytest.approx(0.9939, abs=1e-4)
    # centred cosines to the 2 nearest (+e1, +e2), as the cluster stage computes knn_sim with cluster.center on
    assert apart.scores["knn_sim"] == pytest.approx((0.9 + 0.1) / np.hypot(0.9, 0.1) / 2, abs=1e-4)
    assert close.check == "near_duplicate" and close.scores["max_cos"] > 0.9999
    raw = Reference(set(ids), ids, vectors, mean_knn_sim=1.0, k=2, centered=False)
    (apart_raw,) = review(Gate(raw, 0.995, fakes.loss, fakes.rate, fakes.embed), candidate("synthesize", "Apart."))
    assert apart_raw.scores["knn_sim"] > 0.995  # raw cosines, as knn_sim with cluster.center off
    assert apart_raw.scores["max_cos"] == pytest.approx(0.9939, abs=1e-4)  # near-duplicates are always centred
