"""Merge accepted children into D(r) with lineage; kept parents record what was tried on them this round."""

from __future__ import annotations

import json
import math

import polars as pl

from middo.data.schema import REPLACING_OPS, SAMPLE_SCHEMA, sample_id, with_meta
from middo.refine.operations import Attempt

PARENT_ONLY_META = ("answer", "item", "planted", "refine")
"""Parent meta keys that describe the parent's exact content (its checkable answer, its structured task, its
planted defects, its own refine record): not carried to a child, whose content differs."""


def child_meta(parent_meta: str | None, attempt: Attempt, round_number: int) -> str:
    """The parent's meta minus content-bound keys, plus a `refine` record (op, parent, round, gate scores)."""
    record = {"op": attempt.task.op, "parent": attempt.task.parent, "round": round_number,
              "variant": attempt.task.variant, "gate": finite(attempt.scores)}
    return with_meta(parent_meta, attempt.task.parent, {"refine": record}, drop=PARENT_ONLY_META)


def kept_meta(meta: str | None, attempts: list[Attempt], round_number: int) -> str:
    """A kept parent's meta with this round's attempts on it (outcome and reason) under `refine`."""
    record = {"round": round_number, "attempts": [attempt_summary(a) for a in attempts]}
    return with_meta(meta, attempts[0].task.parent if attempts else "?", {"refine": record})


def attempt_summary(attempt: Attempt) -> dict:
    """op, outcome, where it ended, why, and the child's id if there is one."""
    child = sample_id(attempt.child) if attempt.child else None
    return {"op": attempt.task.op, "variant": attempt.task.variant, "outcome": attempt.outcome,
            "phase": attempt.phase, "reason": attempt.reason, "child": child}


def merge_round(previous: pl.DataFrame, attempts: list[Attempt], round_number: int) -> pl.DataFrame:
    """D(r): D(r-1) in order, a replaced parent's row taken by its children (two when `refine.hard_and_low_quality`
    is `both` and both are accepted), added children right after them."""
    touched = previous.with_row_index("_pos").filter(pl.col("id").is_in([a.task.parent for a in attempts]))
    position = dict(zip(touched["id"].to_list(), touched["_pos"].to_list(), strict=True))
    source = dict(zip(touched["id"].to_list(), touched["source"].to_list(), strict=True))
    meta = dict(zip(touched["id"].to_list(), touched["meta"].to_list(), strict=True))
    children, replaced, tried = [], set(), {}
    for order, attempt in enumerate(attempts):
        parent = attempt.task.parent
        if attempt.outcome == "accepted":
            replacing = attempt.task.op in REPLACING_OPS
            if replacing:
                replaced.add(parent)
            children.append({
                "id": sample_id(attempt.child), "messages": attempt.child, "source": source[parent],
                "round": round_number, "parent": parent, "op": attempt.task.op,
                "meta": child_meta(meta[parent], attempt, round_number),
                "_pos": position[parent], "_sub": 1 + order + (0 if replacing else len(attempts)),
            })
        tried.setdefault(parent, []).append(attempt)
    updates = {p: kept_meta(meta[p], tried[p], round_number) for p in tried if p not in replaced}
    kept = (
        previous.with_row_index("_pos").filter(~pl.col("id").is_in(list(replaced)))
        .with_columns(pl.col("_pos").cast(pl.Int64), pl.lit(0, dtype=pl.Int64).alias("_sub"),
                      pl.col("id").replace_strict(updates, default=pl.col("meta"), return_dtype=pl.Utf8).alias("meta"))
    )
    added = pl.DataFrame(children, schema={**SAMPLE_SCHEMA, "_pos": pl.Int64, "_sub": pl.Int64})
    merged = pl.concat([kept.select(added.columns), added]).sort("_pos", "_sub", maintain_order=True)
    return merged.drop("_pos", "_sub")


def attempts_table(attempts: list[Attempt], round_number: int) -> pl.DataFrame:
    """One row per attempt (the refine log): parent, op, outcome, phase, reason, child id, gate scores as JSON, and
    the teacher's raw replies of both phases (`prompt_reply`, `response_reply`; null where no reply came)."""
    rows = [{**attempt_summary(a), "parent": a.task.parent, "round": round_number,
             "scores": json.dumps(finite(a.scores), sort_keys=True, default=str),
             "prompt_reply": a.replies.get("prompt"), "response_reply": a.replies.get("response")} for a in attempts]
    schema = {"parent": pl.Utf8, "op": pl.Utf8, "variant": pl.Int64, "outcome": pl.Utf8, "phase": pl.Utf8,
              "reason": pl.Utf8, "child": pl.Utf8, "round": pl.Int64, "scores": pl.Utf8, "prompt_reply": pl.Utf8,
              "response_reply": pl.Utf8}
    return pl.DataFrame(rows, schema=schema).select(list(schema))


def finite(scores: dict) -> dict:
    """Scores with NaN/inf as None, so the JSON stays valid."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in scores.items()}
