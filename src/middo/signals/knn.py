"""The cluster stage: `knn_sim` (mean cosine to the k nearest other samples), their ids and sims, k-means ids.

Exact inner-product search on unit vectors up to `cluster.exact_max` usable rows, an IVF index beyond it with its
recall@k measured on random rows. Each row searches k+1 and drops its own label, so a sample never counts itself
while its exact duplicates do count (at cosine 1). Zero vectors have no direction: they get `knn_sim` NaN, no
neighbours and cluster -1, are never anyone's neighbour, and are counted in the metrics. NaN/inf vectors are an
error naming the ids. With fewer than k+1 usable rows, k is clipped to N-1 and a warning is recorded in the metrics.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import faiss
import numpy as np
import polars as pl

from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.signals.config import ClusterConfig
from middo.signals.embeddings import load_embeddings
from middo.signals.knn_index import (
    CHUNK,
    auto_nlist,
    drop_self,
    exact_self_knn,
    ivf_self_knn,
    neighbour_sims,
    row_norms,
    unit_matrix,
)
from middo.tables import write_table

__all__ = ["KNN_SCHEMA", "knn_table", "neighbour_sims", "run_cluster"]

log = get_logger(__name__)

KNN_SCHEMA = {"id": pl.Utf8, "knn_sim": pl.Float64, "neighbor_ids": pl.List(pl.Utf8),
              "neighbor_sims": pl.List(pl.Float64), "cluster": pl.Int64}
TIE_TOLERANCE = 1e-5
"""An approximate neighbour is correct when its sim reaches the exact k-th sim less this (ties count as found)."""


def run_cluster(embeddings: str | Path, output: str | Path, metrics_path: str | Path, cfg: ClusterConfig) -> dict:
    """Read the embeddings directory, write the knn table (one row per id, same order) and the metrics JSON."""
    ids, vectors = load_embeddings(embeddings)
    table, metrics = knn_table(ids, vectors, cfg)
    write_table(table, output)
    write_metrics(metrics, metrics_path)
    return metrics


def knn_table(ids: list[str], vectors: np.ndarray, cfg: ClusterConfig) -> tuple[pl.DataFrame, dict]:
    """The knn table of `vectors` (row i is the embedding of `ids[i]`) and metrics; see the module docstring."""
    started = time.perf_counter()
    if len(set(ids)) != len(ids):
        raise InputError("embeddings: ids are not unique; re-run the score stage on a deduplicated dataset")
    positions = np.flatnonzero(row_norms(ids, vectors) > 0)
    n, warnings = len(positions), []
    if n < len(ids):
        warnings.append(f"{len(ids) - n} zero vectors: knn_sim NaN, no neighbours, cluster -1")
    if n < 2:
        raise InputError(f"embeddings: {n} non-zero vectors; kNN needs at least 2 samples with a usable embedding")
    k = min(cfg.k, n - 1)
    if k < cfg.k:
        warnings.append(f"cluster.k = {cfg.k} but only {n} usable samples: k clipped to {k}")
    for warning in warnings:
        log.warning(warning)
    unit = unit_matrix(vectors, positions)
    loaded = time.perf_counter()
    sims, labels, search_metrics = search_all(unit, k, cfg)
    searched = time.perf_counter()
    metrics = {"n": len(ids), "d": int(vectors.shape[1]), "k": cfg.k, "k_used": k, "zero_vectors": len(ids) - n,
               "warnings": warnings, **search_metrics}
    clusters, cluster_metrics = kmeans_ids(unit, cfg)
    sims = np.clip(sims.astype(np.float64), -1.0, 1.0)
    table = assemble(ids, positions, positions[labels], sims, clusters)
    metrics.update(_summary(sims.mean(axis=1)), **cluster_metrics, load_seconds=loaded - started,
                   search_seconds=searched - loaded, seconds=time.perf_counter() - started)
    log.info("kNN of %d samples (k=%d, %s index) in %.1f s", len(ids), k, metrics["index"], metrics["seconds"])
    return table, metrics


def search_all(unit: np.ndarray, k: int, cfg: ClusterConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """The k nearest other rows of every unit row (sims, row labels): exact up to `cfg.exact_max` rows, else IVF
    with rows whose probed lists were too small searched exactly, and the recall@k of the IVF results."""
    n = len(unit)
    if n <= cfg.exact_max:
        sims, labels = drop_self(*exact_self_knn(unit, k + 1), np.arange(n))
        return sims, labels, {"index": "flat"}
    nlist = auto_nlist(n, cfg.nlist)
    sims, labels = drop_self(*ivf_self_knn(unit, k + 1, nlist, cfg.nprobe, cfg.seed), np.arange(n))
    short = np.flatnonzero((labels < 0).any(axis=1))
    if len(short):
        exact_sims, exact_labels = faiss.knn(unit[short], unit, k + 1, faiss.METRIC_INNER_PRODUCT)
        sims[short], labels[short] = drop_self(exact_sims, exact_labels, short)
    metrics = {"index": "ivf", "nlist": nlist, "nprobe": min(cfg.nprobe, nlist), "exact_fallback_rows": len(short)}
    return sims, labels, {**metrics, **recall_at_k(unit, sims, cfg)}


def recall_at_k(unit: np.ndarray, sims: np.ndarray, cfg: ClusterConfig) -> dict:
    """Recall@k of the approximate neighbours of random rows against exact search of the same rows (tie-aware)."""
    rng = np.random.default_rng(cfg.seed)
    sample = np.sort(rng.choice(len(unit), size=min(cfg.recall_queries, len(unit)), replace=False))
    k = sims.shape[1]
    exact_sims, exact_labels = faiss.knn(unit[sample], unit, k + 1, faiss.METRIC_INNER_PRODUCT)
    exact_sims, _ = drop_self(exact_sims, exact_labels, sample)
    found = sims[sample] >= exact_sims[:, -1:] - TIE_TOLERANCE
    return {"recall": float(found.mean()), "recall_queries": len(sample)}


def kmeans_ids(unit: np.ndarray, cfg: ClusterConfig) -> tuple[np.ndarray, dict]:
    """Spherical k-means (faiss) trained on a sample of the unit rows; the nearest centroid of every row."""
    n = len(unit)
    n_clusters = min(n, cfg.n_clusters or min(1024, max(1, round(math.sqrt(n / 2)))))
    rng = np.random.default_rng(cfg.seed)
    sample = np.sort(rng.choice(n, size=min(n, 64 * n_clusters), replace=False))
    kmeans = faiss.Kmeans(unit.shape[1], n_clusters, niter=20, seed=cfg.seed, spherical=True,
                          max_points_per_centroid=64, min_points_per_centroid=1)
    kmeans.train(unit[sample])
    clusters = np.concatenate([kmeans.index.search(unit[start:start + CHUNK], 1)[1][:, 0]
                               for start in range(0, n, CHUNK)])
    sizes = np.bincount(clusters, minlength=n_clusters)
    return clusters, {"n_clusters": n_clusters, "cluster_size_min": int(sizes.min()),
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
