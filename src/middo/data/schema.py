"""One polars schema for every dataset file, the stable sample id, the `meta` column, the operation names, and
prompt/response views."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from middo.errors import InputError

ROLES = ("system", "user", "assistant")
OPS = ("seed", "simplify", "improve", "synthesize")
"""Every value of the `op` column: `seed` for rows of D(0), else the teacher operation that wrote the row."""
REFINE_OPS = ("simplify", "improve", "synthesize")
"""The teacher operations of a refine round."""
REPLACING_OPS = ("simplify", "improve")
"""Operations whose accepted child replaces its parent; `synthesize` adds a child and keeps the parent."""
PROMPT_OPS = REFINE_OPS
"""Operations whose teacher writes a new prompt (and then its response): all of them."""
_META_FIX = ('meta must be a JSON object string (e.g. {"answer": "4"}) or empty; fix what wrote it, or rebuild the '
             "dataset with `middo ingest`")
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}

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


def sample_meta(meta: str | None, sample_id: str) -> dict:
    """A sample's `meta` as a dict: {} when None or empty; an error naming the sample unless a JSON object."""
    if not meta:
        return {}
    try:
        loaded = json.loads(meta)
    except (TypeError, json.JSONDecodeError) as exc:
        raise InputError(f"sample {sample_id}: its `meta` is not valid JSON ({exc}); {_META_FIX}") from exc
    if not isinstance(loaded, dict):
        kind = _JSON_KINDS.get(type(loaded), "value")
        raise InputError(f"sample {sample_id}: its `meta` is a JSON {kind}, not an object; {_META_FIX}")
    return loaded


def meta_json(fields: dict) -> str:
    """The canonical `meta` string of `fields`: sorted keys, UTF-8 kept, non-JSON values as their str."""
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str)


def with_meta(meta: str | None, sample_id: str, updates: dict | None = None, drop: tuple[str, ...] = ()) -> str:
    """`meta` (parsed by `sample_meta`) without the keys in `drop`, with `updates` set, as a canonical string."""
    fields = {key: value for key, value in sample_meta(meta, sample_id).items() if key not in drop}
    return meta_json({**fields, **(updates or {})})


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
