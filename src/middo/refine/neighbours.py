"""Cosine search with faiss (exact inner product over L2-normalised rows), added in chunks to bound memory.

With a `center`, rows are shifted by it before normalising: cosines of mean-pooled hidden states share a large
common direction (unrelated prompts of a small model sit above 0.99), and subtracting the dataset's mean embedding
leaves the part that tells prompts apart.
"""

from __future__ import annotations

import faiss
import numpy as np

ADD_CHUNK = 65536


def normalized(vectors: np.ndarray, center: np.ndarray | None = None) -> np.ndarray:
    """Rows (minus `center`) scaled to unit length as contiguous float32; all-zero rows stay zero."""
    rows = np.array(vectors, dtype=np.float32)
    if center is not None:
        rows -= center
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.where(norms > 0, norms, 1.0))


def mean_vector(vectors: np.ndarray) -> np.ndarray:
    """Mean row, accumulated in float64 one chunk at a time (`vectors` may be a memory map)."""
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, len(vectors), ADD_CHUNK):
        total += np.asarray(vectors[start : start + ADD_CHUNK], dtype=np.float64).sum(axis=0)
    return (total / max(len(vectors), 1)).astype(np.float32)


class CosineIndex:
    """Exact cosine nearest neighbours over a growing set of vectors (optionally centred), with their ids."""

    def __init__(self, dim: int, center: np.ndarray | None = None):
        self.index = faiss.IndexFlatIP(dim)
        self.center = center
        self.ids: list[str] = []

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Append rows; `vectors` may be a memory map (read and normalised one chunk at a time)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        for start in range(0, len(ids), ADD_CHUNK):
            self.index.add(normalized(vectors[start : start + ADD_CHUNK], self.center))
        self.ids.extend(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Cosines [Q, k'] (k' = min(k, size)), nearest first, and the ids they belong to."""
        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros((len(queries), 0), dtype=np.float32), [[] for _ in range(len(queries))]
        sims, rows = self.index.search(normalized(queries, self.center), k)
        return sims, [[self.ids[r] for r in row] for row in rows]
