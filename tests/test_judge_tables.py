"""End to end: the score, cluster and judge stages write tables that join 1:1 by id with the dataset."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import yaml
from judge_helpers import make_samples

from middo.data.schema import SAMPLE_SCHEMA
from middo.signals.judge_prompts import ASPECTS
from middo.tables import join_by_id


def test_scores_knn_and_ratings_join_the_dataset(tiny_model_dir, tmp_path):
    from stages.cluster import main as cluster
    from stages.judge import main as judge
    from stages.score import main as score

    samples = make_samples(12)[::-1]  # not in id order: joins must go by id
    rows = [{**s, "source": "t", "round": 0, "parent": None, "op": "seed", "meta": "{}"} for s in samples]
    data = tmp_path / "dataset.parquet"
    pl.DataFrame(rows, schema=SAMPLE_SCHEMA).write_parquet(data)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "model": {"base": str(tiny_model_dir), "device": "cpu", "max_length": 512},
        "score": {"token_budget": 2048},
        "cluster": {"k": 3},
        # the untrained tiny judge answers no number (score mass ~3%, quality std ~0.02): keep its ratings, this test
        # is the tables
        "judge": {"mode": "logits", "token_budget": 4096, "min_score_mass": 0.0, "min_quality_std": 0.0},
        "teacher": {"backend": "sim"},
    }))
    out, base, p = tmp_path / "r1", str(tiny_model_dir), ["--params", str(params)]
    score(["--data", str(data), "--base", base, "--model", base, "--output", str(out / "scores.parquet"),
           "--embeddings", str(out / "emb"), "--metrics", str(out / "score.json"), *p])
    cluster(["--embeddings", str(out / "emb"), "--output", str(out / "knn.parquet"), "--metrics",
             str(out / "cluster.json"), *p])
    judge(["--data", str(data), "--model", base, "--output", str(out / "ratings.parquet"), "--metrics",
           str(out / "judge.json"), "--plot", str(out / "judge_hist.csv"), *p])

    joined = pl.read_parquet(data)
    for name in ("scores", "knn", "ratings"):
        joined = join_by_id(joined, pl.read_parquet(out / f"{name}.parquet"), "dataset", name)
    assert len(joined) == 12
    # same model as M0 and Mr: the two losses agree row by row after the join
    np.testing.assert_allclose(joined["loss_pre"].to_numpy(), joined["loss_cur"].to_numpy(), atol=1e-5)
    ratings = joined.select(ASPECTS).to_numpy()
    assert np.isfinite(ratings).all() and ((ratings >= 0) & (ratings <= 10)).all()
    metrics = json.loads((out / "judge.json").read_text())
    assert metrics["mode"] == "logits" and metrics["ratings"] == 72 and metrics["nan_ratings"] == 0
    hist = pl.read_csv(out / "judge_hist.csv")
    assert hist.columns == ["score", *ASPECTS, "quality"] and hist["quality"].sum() == 12
