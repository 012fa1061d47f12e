"""Merge and conservation: every id of D(r-1) is kept or named as its replacement's parent; ids stay unique."""

from __future__ import annotations

import json

import polars as pl
import pytest

from middo.data.schema import SAMPLE_SCHEMA, sample_id
from middo.refine.conservation import ConservationError, check_conservation
from middo.refine.merge import merge_round
from middo.refine.operations import Attempt, Task


def chat(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def dataset(n: int = 4) -> pl.DataFrame:
    messages = [chat(f"question {i}", f"answer {i}") for i in range(n)]
    metas = [json.dumps({"family": "math", "answer": str(i), "planted": ["wrong_answer"]}) for i in range(n)]
    return pl.DataFrame({"id": [sample_id(m) for m in messages], "messages": messages, "source": "seed.jsonl",
                         "round": 0, "parent": None, "op": "seed", "meta": metas}).cast(dict(SAMPLE_SCHEMA))


def attempt(frame: pl.DataFrame, row: int, op: str, outcome: str, child: list[dict] | None, variant: int = 0):
    task = Task(frame["id"][row], op, variant, list(frame["messages"][row]))
    return Attempt(task, outcome=outcome, child=child, reason=None if outcome == "accepted" else f"{outcome} here",
                   scores={"loss": 1.0, "parent_loss": float("nan")})


def test_merge_replaces_adds_and_keeps_with_lineage():
    previous = dataset()
    simple, extra = chat("easy question 0", "easy answer"), chat("new question", "new answer")
    attempts = [attempt(previous, 0, "simplify", "accepted", simple),
                attempt(previous, 1, "improve", "rejected", chat("x", "y")),
                attempt(previous, 2, "synthesize", "accepted", extra),
                attempt(previous, 3, "improve", "teacher_error", None)]
    merged = merge_round(previous, attempts, round_number=1)
    ids = previous["id"].to_list()
    assert merged["id"].to_list() == [sample_id(simple), ids[1], ids[2], sample_id(extra), ids[3]]
    child = merged.row(0, named=True)
    assert (child["parent"], child["op"], child["round"], child["source"]) == (ids[0], "simplify", 1, "seed.jsonl")
    meta = json.loads(child["meta"])
    assert meta["family"] == "math" and "answer" not in meta and "planted" not in meta  # content-bound keys dropped
    assert meta["refine"]["parent"] == ids[0] and meta["refine"]["gate"]["parent_loss"] is None  # NaN -> null
    kept = json.loads(merged.row(1, named=True)["meta"])
    assert kept["answer"] == "1" and kept["refine"]["attempts"][0]["outcome"] == "rejected"
    assert json.loads(merged.row(4, named=True)["meta"])["refine"]["attempts"][0]["reason"] == "teacher_error here"
    assert check_conservation(ids, merged) == {"kept": 3, "replaced": 1, "added": 1}


def test_conservation_fails_when_a_sample_is_lost():
    previous = dataset()
    ids = previous["id"].to_list()
    with pytest.raises(ConservationError, match="1 samples of D\\(r-1\\) are neither kept nor replaced"):
        check_conservation(ids, previous.slice(1))
    orphan = previous.slice(1).with_columns(pl.when(pl.col("id") == ids[1]).then(pl.lit("f" * 16))
                                            .otherwise(pl.col("id")).alias("id"))
    with pytest.raises(ConservationError):
        check_conservation(ids, orphan)


def test_conservation_fails_on_duplicate_ids_and_double_replacement():
    previous = dataset()
    ids = previous["id"].to_list()
    with pytest.raises(ConservationError, match="more than once"):
        check_conservation(ids, pl.concat([previous, previous.head(1)]))
    child = merge_round(previous, [attempt(previous, 0, "improve", "accepted", chat("better", "yes"))], 1)
    both = pl.concat([previous.head(1), child])  # the parent kept AND replaced
    with pytest.raises(ConservationError, match="both kept and replaced"):
        check_conservation(ids, both)
