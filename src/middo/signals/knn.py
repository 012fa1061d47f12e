"""The cluster stage: `knn_sim` (mean cosine to the k nearest other samples), their ids and sims, k-means ids.

Vectors are centred on the dataset's mean embedding (`cluster.center`) and L2-normalised; cosine is their inner
product. Exact search (faiss IndexFlatIP) up to `cluster.exact_max` usable rows, an inner-product IndexHNSWFlat
beyond it with its recall@k measured on random rows against exact search. Each row searches k+1 and drops its own
label, so a sample never counts itself while its exact duplicates do count (at cosine 1). Zero vectors (and, when
centring, vectors equal to the mean) have no direction: they get `knn_sim` NaN, no neighbours and cluster -1, are
never anyone's neighbour, and are counted in the metrics. NaN/inf vectors are an error naming the ids. With fewer
than k+1 usable rows, k is clipped to N-1 and a warning is recorded in the metrics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import polars as pl
from tqdm import tqdm

from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.signals.config import ClusterConfig
from middo.signals.embeddings import load_embeddings
from middo.signals.knn_index import (
    build_index,
    drop_self,
    embedding_mean,
    neighbour_sims,
    prepare_unit_vectors,
    random_rows,
    row_norms,
    search,
    stored_blocks,
)
from middo.tables import write_table

__all__ = ["KNN_SCHEMA", "embedding_mean", "knn_table", "neighbour_sims", "prepare_unit_vectors", "run_cluster"]

log = get_logger(__name__)

KNN_SCHEMA = {"id": pl.Utf8, "knn_sim": pl.Float64, "neighbor_ids": pl.List(pl.Utf8),
              "neighbor_sims": pl.List(pl.Float64), "cluster": pl.Int64}
TIE_TOLERANCE = 1e-5
"""An approximate neighbour is correct when its sim reaches the exact k-th sim less this (ties count as found)."""


@dataclass(frozen=True)
class ClusterPaths:
    """Files of the cluster stage."""

    embeddings: Path
    """Embeddings directory written by the score stage."""
    output: Path
    """Knn table to write (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""


def run_cluster(paths: ClusterPaths, cfg: ClusterConfig) -> dict:
    """Read the embeddings directory, write the knn table (one row per id, same order) and the metrics JSON."""
    ids, vectors = load_embeddings(paths.embeddings)
    table, metrics = knn_table(ids, vectors, cfg)
    write_table(table, paths.output)
    write_metrics(metrics, paths.metrics)
    return metrics


def knn_table(ids: list[str], vectors: np.ndarray, cfg: ClusterConfig) -> tuple[pl.DataFrame, dict]:
    """The knn table of `vectors` (row i is the embedding of `ids[i]`) and metrics; see the module docstring."""
    started = time.perf_counter()
    if len(set(ids)) != len(ids):
        raise InputError("embeddings: ids are not unique; re-run the score stage on a deduplicated dataset")
    positions, mean, warnings = usable_rows(ids, vectors, cfg.center)
    n = len(positions)
    if n < 2:
        hint = "; with so few distinct prompts set cluster.center: false" if cfg.center else ""
        raise InputError(f"embeddings: {n} usable vectors; kNN needs at least 2 samples with a usable embedding{hint}")
    k = min(cfg.k, n - 1)
    if k < cfg.k:
        warnings.append(f"cluster.k = {cfg.k} but only {n} usable samples: k clipped to {k}")
    for warning in warnings:
        log.warning(warning)
    approximate = n > cfg.exact_max
    index = build_index(vectors, positions, mean, cfg.hnsw_m if approximate else 0, cfg.ef_construction)
    loaded = time.perf_counter()
    kmeans = train_kmeans(vectors, positions, mean, cfg)
    sims, labels, clusters = search_all(index, k, cfg.ef_search if approximate else 0, kmeans)
    searched = time.perf_counter()
    metrics = {"n": len(ids), "d": int(vectors.shape[1]), "k": cfg.k, "k_used": k, "centered": cfg.center,
               "zero_vectors": len(ids) - n, "warnings": warnings, "index": "hnsw" if approximate else "flat"}
    if approximate:
        short = fill_short(index, vectors, positions, mean, sims, labels)
        metrics.update(hnsw_m=cfg.hnsw_m, ef_search=max(cfg.ef_search, k + 1), exact_fallback_rows=short,
                       **recall_at_k(index, vectors, positions, mean, sims, cfg))
    del index
    sims = np.clip(sims.astype(np.float64), -1.0, 1.0)
    table = assemble(ids, positions, positions[labels], sims, clusters)
    metrics.update(_summary(sims.mean(axis=1)), **_cluster_sizes(clusters, kmeans.k), load_seconds=loaded - started,
                   search_seconds=searched - loaded, seconds=time.perf_counter() - started)
    log.info("kNN of %d samples (k=%d, %s index) in %.1f s", len(ids), k, metrics["index"], metrics["seconds"])
    return table, metrics


def usable_rows(ids: list[str], vectors: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray | None, list]:
    """Rows with a direction (non-zero; when centring, also not equal to the mean), the mean (None when not
    centring) and warnings counting the others."""
    nonzero = row_norms(ids, vectors) > 0
    mean = embedding_mean(vectors) if center else None
    usable = nonzero & (row_norms(ids, vectors, mean) > 0) if center else nonzero
    warnings = []
    if not nonzero.all():
        warnings.append(f"{int((~nonzero).sum())} zero vectors: knn_sim NaN, no neighbours, cluster -1")
    if (nonzero & ~usable).any():
        warnings.append(f"{int((nonzero & ~usable).sum())} vectors equal the dataset mean (no direction after "
                        "centring): knn_sim NaN, no neighbours, cluster -1")
    return np.flatnonzero(usable), mean, warnings


def search_all(index: faiss.Index, k: int, ef_search: int,
               kmeans: faiss.Kmeans) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k nearest other rows of every index row (sims, index rows; -1 where the HNSW walk found too few) and
    its nearest k-means centroid, searched block by block over the index's stored rows (exact when `ef_search` is
    0)."""
    n = index.ntotal
    sims, labels = np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.int64)
    clusters = np.empty(n, dtype=np.int64)
    with tqdm(total=n, desc="kNN search", unit="row", leave=False) as progress:
        for rows, block in stored_blocks(index):
            sims[rows], labels[rows] = drop_self(*search(index, block, k + 1, ef_search), rows)
            clusters[rows] = kmeans.index.search(block, 1)[1][:, 0]
            progress.update(len(rows))
    return sims, labels, clusters


def fill_short(index: faiss.Index, vectors: np.ndarray, positions: np.ndarray, mean: np.ndarray | None,
               sims: np.ndarray, labels: np.ndarray) -> int:
    """Search exactly the rows for which the HNSW walk returned fewer than k+1 rows; how many there were."""
    short = np.flatnonzero((labels < 0).any(axis=1))
    if len(short):
        queries = prepare_unit_vectors(vectors, mean, positions[short])
        sims[short], labels[short] = drop_self(*search(index, queries, labels.shape[1] + 1), short)
    return len(short)


def recall_at_k(index: faiss.Index, vectors: np.ndarray, positions: np.ndarray, mean: np.ndarray | None,
                sims: np.ndarray, cfg: ClusterConfig) -> dict:
    """Recall@k of the approximate neighbours of random rows against exact search of the same rows (tie-aware), and
    the absolute error of their knn_sim (what the signal sees: near-tied misses barely change it)."""
    sample = random_rows(len(positions), cfg.recall_queries, cfg.seed)
    queries = prepare_unit_vectors(vectors, mean, positions[sample])
    exact_sims, _ = drop_self(*search(index, queries, sims.shape[1] + 1), sample)
    found = sims[sample] >= exact_sims[:, -1:] - TIE_TOLERANCE
    error = np.abs(sims[sample].mean(axis=1, dtype=np.float64) - exact_sims.mean(axis=1, dtype=np.float64))
    return {"recall": float(found.mean()), "recall_queries": len(sample), "knn_sim_error_mean": float(error.mean()),
            "knn_sim_error_max": float(error.max())}


def train_kmeans(vectors: np.ndarray, positions: np.ndarray, mean: np.ndarray | None,
                 cfg: ClusterConfig) -> faiss.Kmeans:
    """Spherical k-means (faiss) trained on a random sample of the unit rows (same geometry as the kNN)."""
    n = len(positions)
    n_clusters = min(n, cfg.n_clusters or min(1024, max(1, round(math.sqrt(n / 2)))))
    sample = random_rows(n, 64 * n_clusters, cfg.seed)
    kmeans = faiss.Kmeans(vectors.shape[1], n_clusters, niter=20, seed=cfg.seed, spherical=True,
                          max_points_per_centroid=64, min_points_per_centroid=1)
    kmeans.train(prepare_unit_vectors(vectors, mean, positions[sample]))
    return kmeans


def _cluster_sizes(clusters: np.ndarray, n_clusters: int) -> dict:
    sizes = np.bincount(clusters, minlength=n_clusters)
    return {"n_clusters": n_clusters, "cluster_size_min": int(sizes.min()),
            "cluster_size_median": float(np.median(sizes)), "cluster_size_max": int(sizes.max())}


def assemble(ids: list[str], positions: np.ndarray, neighbour_rows: np.ndarray, sims: np.ndarray,
             clusters: np.ndarray) -> pl.DataFrame:
    """The knn table in the row order of `ids`; rows outside `positions` (zero vectors) get NaN/empty/-1."""
    n_rows, k = len(ids), sims.shape[1]
    id_series = pl.Series("id", ids, dtype=pl.Utf8)
    usable = np.zeros(n_rows, dtype=bool)
    usable[positions] = True
    rows = np.zeros((n_rows, k), dtype=np.int64)
    rows[positions] = neighbour_rows
    all_sims = np.full((n_rows, k), np.nan)
    all_sims[positions] = sims
    all_clusters = np.full(n_rows, -1, dtype=np.int64)
    all_clusters[positions] = clusters
    frame = pl.DataFrame({
        "id": id_series,
        "knn_sim": np.where(usable, all_sims.mean(axis=1), np.nan),
        "neighbor_ids": id_series.gather(rows.ravel()).reshape((n_rows, k)).cast(pl.List(pl.Utf8)),
        "neighbor_sims": pl.Series(all_sims).cast(pl.List(pl.Float64)),
        "cluster": all_clusters,
        "_usable": usable,
    })
    empty_ids, empty_sims = pl.lit([], dtype=pl.List(pl.Utf8)), pl.lit([], dtype=pl.List(pl.Float64))
    frame = frame.with_columns(
        pl.when(pl.col("_usable")).then(pl.col("neighbor_ids")).otherwise(empty_ids).alias("neighbor_ids"),
        pl.when(pl.col("_usable")).then(pl.col("neighbor_sims")).otherwise(empty_sims).alias("neighbor_sims"),
    )
    return frame.drop("_usable").cast(KNN_SCHEMA)


def _summary(knn_sim: np.ndarray) -> dict:
    return {"knn_sim_mean": float(knn_sim.mean()), "knn_sim_std": float(knn_sim.std()),
            "knn_sim_min": float(knn_sim.min()), "knn_sim_max": float(knn_sim.max())}
