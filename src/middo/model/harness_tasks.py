"""Helpers for local lm-eval task YAMLs (`!function` targets): chat rows as documents, and middo's exact match.

A task dir's `utils.py` wraps `chat_docs` with its data file's path; the demo's task (`data/demo/tasks/middo_demo`)
is the example. The eval stage passes the held-out set it evaluates (`data/eval.parquet`) to every task's
`custom_dataset` as `middo_held_out`, so a task over that set follows `data.eval`. The metric is computed here rather
than by the harness's `exact_match`, so it needs nothing from a hub and compares exactly as middo's own held-out exact
match does (`middo.model.evaluate.normalise`).
"""

from __future__ import annotations

import json
from pathlib import Path

from middo.data.schema import read_samples, sample_meta
from middo.errors import InputError
from middo.model.evaluate import normalise


def chat_docs(path: str | Path, split: str = "test") -> dict:
    """`{split: Dataset}` of chat rows with an `answer`: a JSONL file (`messages` plus fields) or middo's sample table
    (Parquet, the fields in `meta`). Fields: `prompt` (the last user turn), `answer` and the row's other scalars."""
    import datasets

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such data file for this lm-eval task; check its YAML's dataset_kwargs")
    rows = sample_rows(path) if path.suffix == ".parquet" else json_rows(path)
    return {split: datasets.Dataset.from_list([doc_of(row, path, number) for number, row in enumerate(rows, 1)])}


def json_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_rows(path: Path) -> list[dict]:
    """The samples of a middo dataset file as rows: `id`, `messages` and the fields of `meta`."""
    frame = read_samples(path).select("id", "messages", "meta")
    return [{**sample_meta(row["meta"], row["id"]), "id": row["id"], "messages": row["messages"]}
            for row in frame.to_dicts()]  # fmt: skip


def doc_of(row: dict, path: Path, number: int) -> dict:
    """One document: the prompt (the last user turn before the answer), the answer, and the row's scalar fields."""
    users = [m["content"] for m in row.get("messages", []) if m.get("role") == "user"]
    if not users or row.get("answer") is None:
        raise InputError(f"{path}:{number}: a task row needs `messages` with a user turn and an `answer`")
    scalars = {k: v for k, v in row.items() if isinstance(v, str | int | float | bool) and k not in ("answer",)}
    return {**scalars, "prompt": users[-1], "answer": str(row["answer"])}


def exact_match_results(doc: dict, results: list[str]) -> dict[str, float]:
    """`process_results` of a generate task: 1.0 when the reply equals the answer after `normalise`, else 0.0."""
    return {"exact_match": float(normalise(results[0]) == normalise(str(doc["answer"])))}
