"""The gate's growing set of prompt embeddings with ids, searched by cosine in the cluster stage's geometry.

Rows are centred and normalised by `middo.signals.knn_index.prepare_unit_vectors` (the function the cluster stage
uses), so the gate's near-duplicate and density checks see the same cosines as `knn_sim`.
"""

from __future__ import annotations

import faiss
import numpy as np

from middo.signals.knn_index import CHUNK, prepare_unit_vectors


class CosineIndex:
    """Exact cosine nearest neighbours (faiss IndexFlatIP) over a growing set of vectors minus `center`, with ids."""

    def __init__(self, dim: int, center: np.ndarray | None = None):
        self.index = faiss.IndexFlatIP(dim)
        self.center = center
        self.ids: list[str] = []

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        """Append rows; `vectors` may be a memory map (read and normalised one chunk at a time)."""
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        for start in range(0, len(ids), CHUNK):
            self.index.add(prepare_unit_vectors(vectors[start:start + CHUNK], self.center))
        self.ids.extend(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Cosines [Q, k'] (k' = min(k, size)), nearest first, and the ids they belong to."""
        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros((len(queries), 0), dtype=np.float32), [[] for _ in range(len(queries))]
        sims, rows = self.index.search(prepare_unit_vectors(np.asarray(queries, np.float32), self.center), k)
        return sims, [[self.ids[r] for r in row] for row in rows]
