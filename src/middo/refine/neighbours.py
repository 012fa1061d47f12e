"""Cosine search with faiss (exact inner product over L2-normalised rows), added in chunks to bound memory."""

from __future__ import annotations

import faiss
import numpy as np

ADD_CHUNK = 65536


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as contiguous float32 (all-zero rows stay zero)."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


class CosineIndex:
    """Exact cosine nearest neighbours over a growing set of vectors, with the ids of its rows."""

    def __init__(self, dim: int):
        self.index = faiss.IndexFlatIP(dim)
        self.ids: list[str] = []

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Append rows; `vectors` may be a memory map (read and normalised one chunk at a time)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        for start in range(0, len(ids), ADD_CHUNK):
            self.index.add(normalized(vectors[start : start + ADD_CHUNK]))
        self.ids.extend(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Cosines [Q, k'] (k' = min(k, size)), nearest first, and the ids they belong to."""
        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros((len(queries), 0), dtype=np.float32), [[] for _ in range(len(queries))]
        sims, rows = self.index.search(normalized(queries), k)
        return sims, [[self.ids[r] for r in row] for row in rows]
