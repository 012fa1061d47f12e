"""The cluster stage: faiss kNN against brute-force numpy, self exclusion, centring, HNSW path, table contract, end
to end."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import stage_error

from middo.errors import InputError
from middo.signals.config import ClusterConfig
from middo.signals.embeddings import save_embeddings
from middo.signals.knn import KNN_SCHEMA, embedding_mean, knn_table, neighbour_sims, prepare_unit_vectors
from middo.tables import join_by_id

TOL = 1e-5


def make_ids(n: int) -> list[str]:
    return [f"{i:016x}" for i in range(n)]


def brute_sims(vectors: np.ndarray, center: bool = False) -> np.ndarray:
    """Full cosine matrix in float64 (of vectors minus the mean of the non-zero rows when `center`) with self and
    zero rows/columns at -inf (small sets only)."""
    vectors = vectors.astype(np.float64)
    nonzero = np.linalg.norm(vectors, axis=1) > 0
    if center:
        vectors = np.where(nonzero[:, None], vectors - vectors[nonzero].mean(axis=0), 0.0)
    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros(vectors.shape), where=norms[:, None] > 0)
    sims = unit @ unit.T
    sims[:, norms == 0] = -np.inf
    np.fill_diagonal(sims, -np.inf)
    return sims


def assert_matches_brute(table: pl.DataFrame, vectors: np.ndarray, k: int, center: bool = False) -> None:
    """Sims equal the sorted brute-force top k; the ids are a valid top-k set (any choice among ties)."""
    sims = brute_sims(vectors, center)
    position = {row_id: i for i, row_id in enumerate(table["id"])}
    for i, row in enumerate(table.iter_rows(named=True)):
        expected = np.sort(sims[i])[::-1][:k]
        assert np.allclose(row["neighbor_sims"], expected, atol=TOL)
        assert row["knn_sim"] == pytest.approx(expected.mean(), abs=TOL)
        found = [position[j] for j in row["neighbor_ids"]]
        assert i not in found and len(set(found)) == k
        assert np.allclose(sims[i, found], row["neighbor_sims"], atol=TOL)
        must = np.flatnonzero(sims[i] > expected[-1] + TOL)
        assert set(must) <= set(found)


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, d))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_exact_matches_brute_force_with_ties_and_duplicates():
    rng = np.random.default_rng(1)
    vectors = rng.integers(-1, 3, size=(120, 3)).astype(np.float32)  # a small grid: many exact ties
    vectors[vectors.sum(axis=1) == 0] += 1  # keep this test free of zero vectors
    vectors[5] = vectors[6] = vectors[7]
    vectors[8] = 3 * vectors[9]  # same direction, different norm: cosine 1
    table, metrics = knn_table(make_ids(120), vectors, ClusterConfig(k=4, center=False))
    assert metrics["index"] == "flat" and metrics["k_used"] == 4 and not metrics["centered"]
    assert_matches_brute(table, vectors, 4)


def test_centring_matches_brute_force_on_centred_vectors():
    rng = np.random.default_rng(4)
    common = 50 * rng.normal(size=16)  # one dominant shared direction: raw cosines all near 1
    vectors = (common + rng.normal(size=(200, 16))).astype(np.float32)
    vectors[3] = vectors[4]  # an exact duplicate stays at cosine 1 after centring
    vectors[10] = 0  # a zero vector neither moves the mean nor gets neighbours
    ids = make_ids(200)
    raw, raw_metrics = knn_table(ids, vectors, ClusterConfig(k=5, center=False))
    table, metrics = knn_table(ids, vectors, ClusterConfig(k=5))
    assert metrics["centered"] and metrics["zero_vectors"] == 1
    assert raw_metrics["knn_sim_mean"] > 0.99 > 0.9 > metrics["knn_sim_mean"]
    usable = table.filter(~pl.col("knn_sim").is_nan())
    assert_matches_brute(usable, np.delete(vectors, 10, axis=0), 5, center=True)
    assert table["neighbor_sims"][3][0] == pytest.approx(1.0, abs=TOL) and ids[4] in table["neighbor_ids"][3]
    approx, approx_metrics = knn_table(ids, vectors, ClusterConfig(k=5, exact_max=50, ef_search=400))
    assert approx_metrics["index"] == "hnsw" and approx_metrics["recall"] == pytest.approx(1.0)
    assert np.allclose(approx["knn_sim"].drop_nans().to_numpy(), usable["knn_sim"].to_numpy(), atol=TOL)


def test_centring_shared_with_the_gate():
    vectors = np.random.default_rng(5).normal(size=(30, 6)).astype(np.float32) + 10
    mean = embedding_mean(vectors)
    assert np.allclose(mean, vectors.mean(axis=0), atol=1e-5)
    unit = prepare_unit_vectors(vectors, mean)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-6) and np.allclose(unit.mean(axis=0), 0, atol=0.2)
    got = neighbour_sims(vectors[:20], vectors[20:], 3, mean)
    expected = -np.sort(-(unit[20:] @ unit[:20].T), axis=1)[:, :3]
    assert np.allclose(got, expected, atol=TOL)


def test_self_never_counted_but_duplicates_are():
    base = np.random.default_rng(2).normal(size=(3, 8)).astype(np.float32)
    vectors = np.repeat(base, [20, 4, 1], axis=0)  # 20 copies: self may rank anywhere among the ties
    ids = make_ids(len(vectors))
    table, _ = knn_table(ids, vectors, ClusterConfig(k=3))
    for i, row in enumerate(table.iter_rows(named=True)):
        assert ids[i] not in row["neighbor_ids"]
        if i < 24:  # every row with at least 3 duplicates sees exactly them, at cosine 1
            group = range(0, 20) if i < 20 else range(20, 24)
            assert {ids.index(j) for j in row["neighbor_ids"]} <= set(group)
            assert row["knn_sim"] == pytest.approx(1.0, abs=TOL)
    assert table["knn_sim"][24] < 0.999  # the singleton has no duplicate


def test_hnsw_path_reports_recall_and_matches_exact_with_a_wide_search():
    vectors = clustered(3000, 16)
    ids = make_ids(len(vectors))
    full, metrics = knn_table(ids, vectors, ClusterConfig(k=5, exact_max=100, ef_search=1000, recall_queries=200))
    assert metrics["index"] == "hnsw" and metrics["recall"] == pytest.approx(1.0)
    assert metrics["recall_queries"] == 200
    exact, _ = knn_table(ids, vectors, ClusterConfig(k=5))
    assert np.allclose(np.stack(full["neighbor_sims"].to_numpy()), np.stack(exact["neighbor_sims"].to_numpy()),
                       atol=TOL)


def test_hnsw_recall_equals_brute_force_recall():
    vectors = clustered(2000, 16, seed=3)
    cfg = ClusterConfig(k=5, exact_max=10, hnsw_m=2, ef_construction=4, ef_search=1, center=False,
                        recall_queries=2000)
    table, metrics = knn_table(make_ids(2000), vectors, cfg)
    kth = np.sort(brute_sims(vectors), axis=1)[:, -5]
    found = np.stack(table["neighbor_sims"].to_numpy()) >= kth[:, None] - TOL
    assert metrics["hnsw_m"] == 2 and metrics["ef_search"] == 6
    assert metrics["recall"] == pytest.approx(found.mean())
    assert 0.3 < metrics["recall"] < 1.0  # a sparse graph and a narrow search miss some neighbours but not most


def test_table_joins_one_to_one_by_id():
    vectors = clustered(300, 8)
    ids = make_ids(300)
    table, metrics = knn_table(ids, vectors, ClusterConfig(k=3, n_clusters=5))
    assert dict(table.schema) == KNN_SCHEMA
    other = pl.DataFrame({"id": ids[::-1], "x": range(300)})
    assert join_by_id(table, other, "knn", "other").height == 300
    assert table["id"].to_list() == ids
    assert set(table["cluster"]) <= set(range(5)) and metrics["n_clusters"] == 5
    assert metrics["cluster_size_min"] >= 1 and metrics["cluster_size_max"] <= 300


def test_zero_vectors_get_nan_and_are_nobodys_neighbour():
    vectors = clustered(50, 8)
    vectors[[4, 9]] = 0
    ids = make_ids(50)
    table, metrics = knn_table(ids, vectors, ClusterConfig(k=3, center=False))
    assert metrics["zero_vectors"] == 2 and metrics["warnings"]
    rows = table.filter(pl.col("id").is_in([ids[4], ids[9]]))
    assert rows["knn_sim"].is_nan().all() and rows["cluster"].to_list() == [-1, -1]
    assert rows["neighbor_ids"].list.len().to_list() == [0, 0]
    assert not set(table["neighbor_ids"].explode().drop_nulls()) & {ids[4], ids[9]}
    assert_matches_brute(table.filter(~pl.col("knn_sim").is_nan()), np.delete(vectors, [4, 9], axis=0), 3)


def test_nan_vectors_are_an_error_naming_the_ids():
    vectors = clustered(20, 4)
    vectors[7, 2] = np.nan
    with pytest.raises(InputError, match=make_ids(20)[7]):
        knn_table(make_ids(20), vectors, ClusterConfig(k=3))


def test_small_sets_clip_k_with_a_warning():
    vectors = clustered(4, 4)
    table, metrics = knn_table(make_ids(4), vectors, ClusterConfig(k=10))
    assert metrics["k_used"] == 3 and any("clipped" in w for w in metrics["warnings"])
    assert table["neighbor_ids"].list.len().to_list() == [3] * 4
    with pytest.raises(InputError, match="at least 2"):
        knn_table(make_ids(1), vectors[:1], ClusterConfig(k=10))


def test_neighbour_sims_of_new_queries():
    index_vectors, queries = clustered(200, 8), clustered(10, 8, seed=9)
    queries[3] = 0
    got = neighbour_sims(index_vectors, queries, 4)
    unit_index = index_vectors / np.linalg.norm(index_vectors, axis=1, keepdims=True)
    unit_queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    expected = -np.sort(-(unit_queries @ unit_index.T), axis=1)[:, :4]
    assert np.isnan(got[3]).all()
    assert np.allclose(np.delete(got, 3, axis=0), np.delete(expected, 3, axis=0), atol=TOL)


def test_stage_end_to_end(tmp_path, capsys):
    from stages.cluster import main

    vectors = clustered(400, 12)
    ids = make_ids(400)
    save_embeddings(tmp_path / "embeddings", ids, vectors)
    params = tmp_path / "params.yaml"
    params.write_text("cluster:\n  k: 5\n  exact_max: 100\n  ef_search: 16\n  recall_queries: 50\n  n_clusters: 4\n")
    out, metrics_path = tmp_path / "r1" / "knn.parquet", tmp_path / "r1" / "cluster.json"
    main(["--embeddings", str(tmp_path / "embeddings"), "--output", str(out), "--metrics", str(metrics_path),
          "--params", str(params)])
    table = pl.read_parquet(out)
    metrics = json.loads(metrics_path.read_text())
    assert table["id"].to_list() == ids and dict(table.schema) == KNN_SCHEMA
    assert metrics["n"] == 400 and metrics["d"] == 12 and metrics["index"] == "hnsw"
    assert 0 < metrics["recall"] <= 1 and metrics["recall_queries"] == 50
    assert metrics["knn_sim_min"] <= metrics["knn_sim_mean"] <= metrics["knn_sim_max"]
    params.write_text("cluster:\n  k: 0\n")
    args = ["--embeddings", str(tmp_path / "embeddings"), "--output", str(out), "--metrics", str(metrics_path)]
    assert "cluster.k = 0" in stage_error(capsys, main, [*args, "--params", str(params)])
