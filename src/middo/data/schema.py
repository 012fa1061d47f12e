"""One polars schema for every dataset file, the stable sample id, and prompt/response views."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from middo.errors import InputError

ROLES = ("system", "user", "assistant")
OPS = ("seed", "simplify", "improve", "synthesize")

MESSAGE = pl.Struct({"role": pl.Utf8, "content": pl.Utf8})
SAMPLE_SCHEMA = pl.Schema(
    {
        "id": pl.Utf8,
        "messages": pl.List(MESSAGE),
        "source": pl.Utf8,
        "round": pl.Int64,
        "parent": pl.Utf8,
        "op": pl.Utf8,
        "meta": pl.Utf8,
    }
)


def sample_id(messages: list[dict]) -> str:
    """16 hex chars of sha256 over the canonical JSON of `messages` (role and content only)."""
    canonical = [{"role": m["role"], "content": m["content"]} for m in messages]
    blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def prompt_messages(messages: list[dict]) -> list[dict]:
    """Everything before the last assistant turn."""
    return list(messages[: _last_assistant(messages)])


def response_text(messages: list[dict]) -> str:
    """The content of the last assistant turn."""
    return messages[_last_assistant(messages)]["content"]


def _last_assistant(messages: list[dict]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "assistant":
            return index
    raise InputError("sample has no assistant turn: every sample needs a response from the assistant")


def empty_samples() -> pl.DataFrame:
    """An empty dataset frame with the sample schema."""
    return pl.DataFrame(schema=SAMPLE_SCHEMA)


def validate_samples(frame: pl.DataFrame, where: str = "dataset") -> pl.DataFrame:
    """Check columns, types and id uniqueness; return the frame in schema column order."""
    missing = [name for name in SAMPLE_SCHEMA.names() if name not in frame.columns]
    if missing:
        raise InputError(f"{where}: missing columns {missing}; ingest raw data with `middo ingest` first")
    frame = frame.select(SAMPLE_SCHEMA.names())
    for name, dtype in SAMPLE_SCHEMA.items():
        if frame.schema[name] != dtype:
            try:
                frame = frame.with_columns(pl.col(name).cast(dtype))
            except pl.exceptions.PolarsError as exc:
                raise InputError(f"{where}: column {name!r} has type {frame.schema[name]}, expected {dtype}") from exc
    duplicated = frame.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if duplicated:
        raise InputError(f"{where}: {len(duplicated)} duplicated ids (e.g. {duplicated[:3]}); ids must be unique")
    if frame["id"].null_count():
        raise InputError(f"{where}: {frame['id'].null_count()} rows without an id")
    return frame


def read_samples(path: str | Path) -> pl.DataFrame:
    """Read a dataset Parquet file written by `write_samples`, validated against the schema."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such dataset file; run the stage that writes it (or `middo ingest`)")
    return validate_samples(pl.read_parquet(path), where=str(path))


def write_samples(frame: pl.DataFrame, path: str | Path) -> Path:
    """Validate and write a dataset as Parquet (zstd), creating parent directories."""
    path = Path(path)
    frame = validate_samples(frame, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", statistics=True)
    return path
