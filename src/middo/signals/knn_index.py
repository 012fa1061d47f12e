"""Cosine nearest neighbours with faiss: unit-normalised rows, exact flat or IVF index, queries in chunks.

Rows are read in chunks from a (memory-mapped) float32 matrix and normalised on the way into the index, so memory
stays O(N·d + N·k): the index holds the only normalised copy and no N×N matrix is ever formed. Cosine equals the
inner product of unit vectors, so every index uses METRIC_INNER_PRODUCT and returns similarities, highest first.
"""

from __future__ import annotations

import math

import faiss
import numpy as np
from tqdm import tqdm

from middo.errors import InputError

CHUNK = 8192
"""Rows normalised or searched at a time."""


def unit_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`vectors[rows]` (rows sorted, all of non-zero norm) as contiguous float32 unit vectors."""
    first = int(rows[0])
    block = np.asarray(vectors[first:int(rows[-1]) + 1], dtype=np.float32)[rows - first]
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    return np.ascontiguousarray(block)


def row_norms(ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """Norm of every row; raises InputError naming the ids of rows that hold NaN or inf."""
    norms = np.empty(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), CHUNK):
        block = np.asarray(vectors[start:start + CHUNK], dtype=np.float64)
        norms[start:start + len(block)] = np.linalg.norm(block, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms))
    if len(bad):
        named = [ids[i] for i in bad[:5]]
        raise InputError(f"{len(bad)} embeddings hold NaN or inf (ids {named}{' ...' if len(bad) > 5 else ''}); "
                         "the score stage produced broken vectors: check the model (dtype, overflow) and re-run score")
    return norms


def auto_nlist(n: int, requested: int) -> int:
    """IVF list count: `requested`, or about 4·sqrt(n) as a power of two; at most n/39 (faiss's training minimum)."""
    nlist = requested or 2 ** round(math.log2(4 * math.sqrt(n)))
    return max(1, min(nlist, n // 39))


def build_index(vectors: np.ndarray, positions: np.ndarray, exact: bool, nlist: int, nprobe: int,
                seed: int) -> faiss.Index:
    """An inner-product index over the unit-normalised `vectors[positions]` (index label i = positions[i])."""
    d = vectors.shape[1]
    if exact:
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # coarse centroids only route queries: a few iterations suffice
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(positions), size=min(len(positions), 64 * nlist), replace=False))
        index.train(unit_rows(vectors, positions[sample]))
        index.nprobe = min(nprobe, nlist)
    for start in tqdm(range(0, len(positions), CHUNK), desc="index", unit="chunk", leave=False):
        index.add(unit_rows(vectors, positions[start:start + CHUNK]))
    return index


def search_chunks(index: faiss.Index, vectors: np.ndarray, positions: np.ndarray, k: int,
                  desc: str = "search") -> tuple[np.ndarray, np.ndarray]:
    """Top-k (sims, labels) of each `vectors[positions]` row against `index`, searched CHUNK queries at a time."""
    sims = np.empty((len(positions), k), dtype=np.float32)
    labels = np.empty((len(positions), k), dtype=np.int64)
    for start in tqdm(range(0, len(positions), CHUNK), desc=desc, unit="chunk", leave=False):
        stop = start + CHUNK
        sims[start:stop], labels[start:stop] = index.search(unit_rows(vectors, positions[start:stop]), k)
    return sims, labels


def drop_self(sims: np.ndarray, labels: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From k+1 results per row, drop the row's own label (by label, not rank: a duplicate may rank first);
    where it is absent (ties at the top pushed it out), drop the last result instead."""
    drop = labels == own[:, None]
    drop[~drop.any(axis=1), -1] = True
    keep = ~drop
    n, k = len(labels), labels.shape[1] - 1
    return sims[keep].reshape(n, k), labels[keep].reshape(n, k)


def exact_neighbours(vectors: np.ndarray, positions: np.ndarray, queries: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (sims, labels) of a few unit `queries` against all of `vectors[positions]`, streamed by chunk."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for start in range(0, len(positions), CHUNK):
        block = faiss.IndexFlatIP(vectors.shape[1])
        block.add(unit_rows(vectors, positions[start:start + CHUNK]))
        sims, labels = block.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, block.ntotal))
        heap.add_result(sims, np.where(labels >= 0, labels + start, -1))
    heap.finalize()
    return heap.D, heap.I


def neighbour_sims(index_vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> np.ndarray:
    """Cosine similarities [n_queries, k] (highest first) of each query to its k nearest rows of `index_vectors`.

    For checking new vectors against an existing set (e.g. the refine gate: a synthesized child should land away
    from dense regions, i.e. have a low mean of these). Nothing is excluded: the queries are not in the index.
    Zero rows of `index_vectors` are skipped; a zero query gets NaN sims; k is clipped to the usable index rows.
    """
    index_vectors = np.asarray(index_vectors, dtype=np.float32)
    query_vectors = np.asarray(query_vectors, dtype=np.float32).reshape(-1, index_vectors.shape[1])
    index_norms = row_norms([f"index row {i}" for i in range(len(index_vectors))], index_vectors)
    query_norms = row_norms([f"query row {i}" for i in range(len(query_vectors))], query_vectors)
    positions = np.flatnonzero(index_norms > 0)
    k = min(k, len(positions))
    result = np.full((len(query_vectors), k), np.nan)
    usable = np.flatnonzero(query_norms > 0)
    if k == 0 or not len(usable):
        return result
    index = build_index(index_vectors, positions, exact=True, nlist=0, nprobe=1, seed=0)
    sims, _ = search_chunks(index, query_vectors, usable, k, desc="query")
    result[usable] = np.clip(sims, -1.0, 1.0)
    return result
