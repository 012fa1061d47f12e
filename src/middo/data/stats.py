"""Dataset statistics without a tokenizer: rows, turns, roles, character/word lengths, duplicates."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from middo.data.ingest import IngestReport, iter_samples
from middo.data.readers import source_name
from middo.data.schema import SAMPLE_SCHEMA, read_samples

QUANTILES = {"min": 0.0, "p10": 0.1, "median": 0.5, "p90": 0.9, "max": 1.0}


def load_for_stats(path: str | Path) -> tuple[pl.DataFrame, dict | None]:
    """A middo dataset as is, or any other input ingested in memory (bad rows skipped; their counts returned)."""
    spec = str(path)
    if spec.endswith(".parquet") and set(SAMPLE_SCHEMA.names()) <= set(pl.read_parquet_schema(spec)):
        return read_samples(spec), None
    report = IngestReport(inputs=[spec], on_error="skip")
    samples = {sample["id"]: sample for sample in iter_samples(spec, "auto", source_name(spec), "skip", report)}
    report.duplicates = report.rows - sum(report.skipped.values()) - len(samples)
    report.samples = len(samples)
    return pl.DataFrame(list(samples.values()), schema=SAMPLE_SCHEMA), report.to_dict()


def dataset_stats(frame: pl.DataFrame) -> dict[str, Any]:
    """Counts and length distributions of a dataset frame in `SAMPLE_SCHEMA`."""
    if frame.is_empty():
        return {"rows": 0}
    turns = frame.select(pl.col("id"), pl.col("messages")).explode("messages").unnest("messages")
    views = frame.select(
        n_turns=pl.col("messages").list.len(),
        n_user=pl.col("messages").list.eval(pl.element().struct.field("role") == "user").list.sum(),
        prompt=pl.col("messages").list.head(pl.col("messages").list.len() - 1),
        response=pl.col("messages").list.last().struct.field("content"),
    ).with_columns(
        prompt_text=pl.col("prompt").list.eval(pl.element().struct.field("content")).list.join("\n"),
    )
    lengths = views.select(
        prompt_chars=pl.col("prompt_text").str.len_chars(),
        response_chars=pl.col("response").str.len_chars(),
        prompt_words=pl.col("prompt_text").str.count_matches(r"\S+"),
        response_words=pl.col("response").str.count_matches(r"\S+"),
    )
    return {
        "rows": frame.height,
        "turns": {
            "total": int(views["n_turns"].sum()),
            "per_sample": _distribution(views["n_turns"]),
            "multi_turn_samples": int((views["n_user"] > 1).sum()),
        },
        "roles": dict(sorted(Counter(turns["role"].to_list()).items())),
        "lengths": {name: _distribution(lengths[name]) for name in lengths.columns},
        "duplicates": {
            "ids": int(frame["id"].is_duplicated().sum()),
            "prompts": _extra_copies(views["prompt"]),
            "responses": _extra_copies(views["response"]),
        },
        "sources": _counts(frame["source"]),
        "ops": _counts(frame["op"]),
        "rounds": {str(key): value for key, value in _counts(frame["round"]).items()},
    }


def format_stats(stats: dict[str, Any], indent: str = "") -> str:
    """A readable, indented text rendering of nested stats."""
    lines = []
    for key, value in stats.items():
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:")
            lines.append(format_stats(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {round(value, 1) if isinstance(value, float) else value}")
    return "\n".join(lines)


def _distribution(column: pl.Series) -> dict[str, float]:
    values = {name: float(column.quantile(q, interpolation="nearest")) for name, q in QUANTILES.items()}
    return {"mean": float(column.mean()), **values}


def _extra_copies(column: pl.Series) -> int:
    """Rows that repeat an earlier row's value (a value seen 3 times counts 2)."""
    return column.len() - column.n_unique()


def _counts(column: pl.Series) -> dict:
    return dict(sorted(Counter(column.to_list()).items()))
