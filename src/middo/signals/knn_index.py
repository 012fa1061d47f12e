"""Cosine nearest neighbours of every row among the others (faiss heaps and BLAS), and of new queries.

Rows are read in chunks from a (memory-mapped) float32 matrix into one unit-normalised copy, so memory stays
O(N·d + N·k): no N×N matrix is ever formed. Cosine is the inner product of unit vectors, highest first.

- Exact: every tile of X·Xᵀ in turn (one BLAS product each) feeds faiss top-k heaps: N²·d multiply-adds.
- Approximate (IVF): spherical k-means centroids split the rows into lists (each row in its nearest list); each row
  probes its `nprobe` nearest lists. List by list, all rows probing it are searched against its members with one
  BLAS product, so the whole kNN graph costs about N·nprobe·(N/nlist)·d multiply-adds instead of N²·d.
"""

from __future__ import annotations

import math
import mmap

import faiss
import numpy as np
from tqdm import tqdm

from middo.errors import InputError

CHUNK = 8192
"""Rows read, normalised or assigned at a time."""
BLOCK = 4096
"""Side of the query × candidate tiles of similarities (64 MiB of float32 at most)."""


def row_norms(ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """Norm of every row; raises InputError naming the ids of rows that hold NaN or inf."""
    norms = np.empty(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), CHUNK):
        norms[start:start + CHUNK] = np.linalg.norm(np.asarray(vectors[start:start + CHUNK], np.float64), axis=1)
    bad = np.flatnonzero(~np.isfinite(norms))
    if len(bad):
        named = [ids[i] for i in bad[:5]]
        raise InputError(f"{len(bad)} embeddings hold NaN or inf (ids {named}{' ...' if len(bad) > 5 else ''}); "
                         "the score stage produced broken vectors: check the model (dtype, overflow) and re-run score")
    return norms


def unit_matrix(vectors: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """`vectors[positions]` (sorted rows of non-zero norm) as one float32 unit-row matrix, read chunk by chunk.

    Pages of a memory map already read are released as it goes, so the file does not count twice in memory.
    """
    unit = np.empty((len(positions), vectors.shape[1]), dtype=np.float32)
    mapped = vectors.base if isinstance(getattr(vectors, "base", None), mmap.mmap) else None
    for start in range(0, len(positions), CHUNK):
        rows = positions[start:start + CHUNK]
        block = np.asarray(vectors[rows[0]:rows[-1] + 1], dtype=np.float32)[rows - rows[0]]
        unit[start:start + len(rows)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        if mapped is not None:
            mapped.madvise(mmap.MADV_DONTNEED)
    return unit


def offer_pairs(heap: faiss.ResultHeap, unit: np.ndarray, queries: np.ndarray, candidates: np.ndarray) -> None:
    """Offer the inner product of every (query, candidate) row pair to the queries' heaps, one BLAS product per
    BLOCK×BLOCK tile, so memory stays bounded however large the lists are."""
    for q_start in range(0, len(queries), BLOCK):
        rows = queries[q_start:q_start + BLOCK]
        query_block = unit[rows]
        for c_start in range(0, len(candidates), BLOCK):
            columns = candidates[c_start:c_start + BLOCK]
            heap.add_result_subset(rows, query_block @ unit[columns].T, columns)


def exact_self_knn(unit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (sims, row labels) of every row of `unit` among all rows, itself included."""
    n = len(unit)
    heap, everyone = faiss.ResultHeap(n, k, keep_max=True), np.arange(n)
    for start in tqdm(range(0, n, BLOCK), desc="exact kNN", unit="block", leave=False):
        offer_pairs(heap, unit, everyone[start:start + BLOCK], everyone)
    heap.finalize()
    return heap.D, heap.I


def auto_nlist(n: int, requested: int) -> int:
    """IVF list count: `requested`, or about sqrt(n) as a power of two; at most n/39 (faiss's training minimum)."""
    nlist = requested or 2 ** round(math.log2(math.sqrt(n)))
    return max(1, min(nlist, n // 39))


def ivf_self_knn(unit: np.ndarray, k: int, nlist: int, nprobe: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-k (sims, row labels) of every row among all rows (itself included); -1 where a row's probed
    lists held fewer than k rows."""
    n, d = unit.shape
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))
    kmeans = faiss.Kmeans(d, nlist, niter=10, seed=seed, spherical=True, max_points_per_centroid=64,
                          min_points_per_centroid=1)
    kmeans.train(unit[sample])
    centroids = faiss.IndexFlatIP(d)
    centroids.add(kmeans.centroids)
    probes = np.empty((n, min(nprobe, nlist)), dtype=np.int64)
    for start in range(0, n, CHUNK):
        probes[start:start + CHUNK] = centroids.search(unit[start:start + CHUNK], probes.shape[1])[1]
    members, member_bounds = _group(probes[:, 0], nlist)
    queries, query_bounds = _group(probes.ravel(), nlist)
    queries //= probes.shape[1]  # flat probe index -> row
    heap = faiss.ResultHeap(n, k, keep_max=True)
    for lst in tqdm(range(nlist), desc="IVF kNN", unit="list", leave=False):
        in_list = members[member_bounds[lst]:member_bounds[lst + 1]]
        probing = queries[query_bounds[lst]:query_bounds[lst + 1]]
        offer_pairs(heap, unit, probing, in_list)
    heap.finalize()
    return heap.D, heap.I


def _group(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of `keys` sorted by key, and the bounds of each key's run."""
    order = np.argsort(keys, kind="stable")
    return order, np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))])


def drop_self(sims: np.ndarray, labels: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From k+1 results per row, drop the row's own label (by label, not rank: a duplicate may rank first);
    where it is absent (ties at the top pushed it out), drop the last result instead."""
    drop = labels == own[:, None]
    drop[~drop.any(axis=1), -1] = True
    keep = ~drop
    n, k = len(labels), labels.shape[1] - 1
    return sims[keep].reshape(n, k), labels[keep].reshape(n, k)


def neighbour_sims(index_vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> np.ndarray:
    """Cosine similarities [n_queries, k] (highest first) of each query to its k nearest rows of `index_vectors`.

    For checking new vectors against an existing set (e.g. the refine gate: a synthesized child should land away
    from dense regions, i.e. have a low mean of these). Nothing is excluded: the queries are not in the index.
    Zero rows of `index_vectors` are skipped; a zero query gets NaN sims; k is clipped to the usable index rows.
    NaN/inf in either raises InputError.
    """
    index_vectors = np.asarray(index_vectors, dtype=np.float32)
    query_vectors = np.asarray(query_vectors, dtype=np.float32).reshape(-1, index_vectors.shape[1])
    index_norms = row_norms([f"index row {i}" for i in range(len(index_vectors))], index_vectors)
    query_norms = row_norms([f"query row {i}" for i in range(len(query_vectors))], query_vectors)
    positions, usable = np.flatnonzero(index_norms > 0), np.flatnonzero(query_norms > 0)
    k = min(k, len(positions))
    result = np.full((len(query_vectors), k), np.nan)
    if k and len(usable):
        sims, _ = faiss.knn(unit_matrix(query_vectors, usable), unit_matrix(index_vectors, positions), k,
                            faiss.METRIC_INNER_PRODUCT)
        result[usable] = np.clip(sims, -1.0, 1.0)
    return result
