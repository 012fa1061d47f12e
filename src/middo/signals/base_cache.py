"""Base-model losses reused by id across rounds, guarded by a fingerprint of the base model.

A sample's id is a hash of its messages, so the same id under the same base model (same weights, tokenizer and
tokenisation settings) has the same `loss_pre`. The fingerprint is stored in every scores table; a previous table
is reused only for rows whose fingerprint equals the current one.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import polars as pl

from middo.errors import InputError
from middo.log import get_logger

log = get_logger(__name__)

FINGERPRINT_COLUMN = "base_fingerprint"


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def base_fingerprint(base: str | Path, gguf_file: str | None, settings: dict) -> str:
    """sha256 over the base model's files (weights, config, tokenizer) and the tokenisation `settings`.

    A local dir hashes every top-level file in it; a `.gguf` path (or dir plus `gguf_file`) hashes that file; a
    hub id that is not a local path is fingerprinted by its name only (its weights are not visible here).
    """
    path = Path(base)
    if path.is_dir():
        files = [path / gguf_file] if gguf_file else sorted(item for item in path.iterdir() if item.is_file())
        content = {item.name: _file_digest(item) for item in files if item.exists()}
    elif path.is_file():
        content = {path.name: _file_digest(path)}
    else:
        log.warning("base model %s is not a local path: base-loss reuse trusts its name, not its weights", base)
        content = {"name": str(base), "gguf_file": gguf_file}
    blob = json.dumps({"files": content, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def reusable_base_losses(previous: str | Path | None, fingerprint: str, ids: list[str]) -> dict[str, float]:
    """`loss_pre` by id from a previous scores table, for `ids` scored there under the same base model."""
    if previous is None:
        return {}
    path = Path(previous)
    if not path.exists():
        raise InputError(f"{path}: --reuse table not found; pass the previous round's scores.parquet or drop --reuse")
    table = pl.read_parquet(path)
    missing = {"id", "loss_pre", FINGERPRINT_COLUMN} - set(table.columns)
    if missing:
        raise InputError(f"{path}: not a scores table (missing {sorted(missing)}); re-run the previous score stage")
    wanted = set(ids)
    same_base = table.filter(pl.col(FINGERPRINT_COLUMN) == fingerprint)
    if len(same_base) < len(table):
        log.info("%s: %d of %d rows were scored under another base model: not reused", path,
                 len(table) - len(same_base), len(table))
    reused = {
        sample_id: loss
        for sample_id, loss in zip(same_base["id"].to_list(), same_base["loss_pre"].to_list(), strict=True)
        if sample_id in wanted and loss is not None and not math.isnan(loss)
    }
    return reused
