"""Embedding files: a float32 `vectors.npy` (memory-mapped on read) with its row order in `ids.parquet`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from middo.errors import InputError

VECTORS = "vectors.npy"
IDS = "ids.parquet"


def save_embeddings(directory: str | Path, ids: list[str], vectors: np.ndarray) -> Path:
    """Write `vectors[i]` as the embedding of `ids[i]`."""
    directory = Path(directory)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
    pl.DataFrame({"id": ids}, schema={"id": pl.Utf8}).write_parquet(directory / IDS)
    return directory


def load_embeddings(directory: str | Path) -> tuple[list[str], np.ndarray]:
    """Read ids and a read-only memory map of the vectors."""
    directory = Path(directory)
    if not (directory / VECTORS).exists() or not (directory / IDS).exists():
        raise InputError(f"{directory}: no embeddings ({VECTORS}, {IDS}); run the score stage first")
    ids = pl.read_parquet(directory / IDS)["id"].to_list()
    vectors = np.load(directory / VECTORS, mmap_mode="r")
    if len(ids) != vectors.shape[0]:
        raise InputError(f"{directory}: {len(ids)} ids but {vectors.shape[0]} vectors; re-run the score stage")
    return ids, vectors
