"""Select: σ-rule on hand-computed values, budget, random control with equal counts, NaN handling, 1:1 joins."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from middo.config import section
from middo.data.schema import SAMPLE_SCHEMA, write_samples
from middo.errors import ConfigError, JoinError
from middo.selection import SelectConfig, select_flags
from middo.selection.run import join_signals

NAN = math.nan
# The first 8 values of each column are a permutation of {2,4,4,4,5,5,7,9}: μ = 5, population σ = 2 (by hand).
LOSS_PRE = [2, 4, 4, 4, 5, 5, 7, 9, NAN]
LOSS_CUR = [4, 2, 4, 4, 5, 5, 7, 9, NAN]
KNN_SIM = [v / 16 for v in (9, 7, 5, 5, 4, 4, 4, 2)] + [NAN]  # sixteenths of the same set: μ = 5/16, σ = 2/16
QUALITY = [5, 4, 4, 9, 5, 2, 7, 4, NAN]
IDS = [f"s{i}" for i in range(9)]


def joined_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"id": IDS, "loss_pre": LOSS_PRE, "loss_cur": LOSS_CUR, "knn_sim": KNN_SIM, "quality": QUALITY},
        schema={"id": pl.Utf8, "loss_pre": pl.Float64, "loss_cur": pl.Float64, "knn_sim": pl.Float64,
                "quality": pl.Float64},
    )


def flagged(selection, flag: str) -> list[str]:
    return selection.flags.filter(pl.col(flag))["id"].to_list()


def test_sigma_rule_on_hand_computed_values():
    selection = select_flags(joined_frame(), SelectConfig(mode="sigma"))
    assert selection.stats["loss_pre"].mean == pytest.approx(5.0)
    assert selection.stats["loss_pre"].std == pytest.approx(2.0)  # population std (ddof=0), over the 8 finite values
    assert selection.stats["knn_sim"].std == pytest.approx(0.125)
    # hard needs both losses > μ + σ = 7: s7 (9, 9) only; s6 sits exactly at 7 and is not flagged
    assert flagged(selection, "hard") == ["s7"]
    assert flagged(selection, "sparse") == ["s7"]  # knn_sim < 5/16 − 2/16
    assert flagged(selection, "low_quality") == ["s5"]  # quality < 5 − 2
    assert selection.thresholds["hard"] == {"loss_pre": pytest.approx(7.0), "loss_cur": pytest.approx(7.0)}
    reasons = selection.flags.filter(pl.col("id") == "s7")["reasons"].to_list()[0]
    assert reasons == ["hard: loss_pre 9 > 7 and loss_cur 9 > 7", "sparse: knn_sim 0.125 < 0.1875"]


def test_sigma_multipliers_move_the_thresholds():
    selection = select_flags(joined_frame(), SelectConfig(m_complexity=0.5, m_diversity=0.0, m_quality=2.0))
    assert flagged(selection, "hard") == ["s6", "s7"]  # both losses > 6
    assert flagged(selection, "sparse") == ["s4", "s5", "s6", "s7"]  # < 5/16
    assert flagged(selection, "low_quality") == []  # < 1


def test_nan_values_never_flag_and_are_counted():
    frame = joined_frame().with_columns(pl.lit(NAN).alias("quality"))
    selection = select_flags(frame, SelectConfig())
    assert not selection.flags["low_quality"].any()
    assert selection.stats["quality"].n_nan == 9
    selection = select_flags(joined_frame(), SelectConfig(m_complexity=0, m_diversity=0, m_quality=0))
    row = selection.flags.filter(pl.col("id") == "s8").row(0, named=True)
    assert (row["hard"], row["sparse"], row["low_quality"], row["reasons"]) == (False, False, False, [])
    assert selection.stats["quality"].n_nan == 1


def test_budget_flags_the_worst_fraction():
    config = SelectConfig(mode="budget", budget_complexity=0.25, budget_diversity=0.25, budget_quality=0.125)
    selection = select_flags(joined_frame(), config)
    assert flagged(selection, "hard") == ["s6", "s7"]  # 2 of 8 finite: min(z_pre, z_cur) = 2 and 1
    assert flagged(selection, "sparse") == ["s4", "s7"]  # 2/16, then the tie at 4/16 broken by id (s4 first)
    assert flagged(selection, "low_quality") == ["s5"]
    assert selection.thresholds["sparse"]["knn_sim"] == pytest.approx(0.25)
    zero = select_flags(joined_frame(), SelectConfig(mode="budget", budget_complexity=0.0))
    assert flagged(zero, "hard") == []


def random_frame(n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    quality = rng.normal(6, 1.5, n)
    quality[rng.choice(n, 30, replace=False)] = NAN
    return pl.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)], "loss_pre": rng.gamma(2.0, 1.0, n), "loss_cur": rng.gamma(2.0, 1.0, n),
        "knn_sim": rng.uniform(0.3, 0.95, n), "quality": quality,
    })


def test_random_control_flags_as_many_as_the_sigma_rule():
    frame = random_frame()
    sigma = select_flags(frame, SelectConfig(mode="sigma", m_complexity=0.5))
    first = select_flags(frame, SelectConfig(mode="random", m_complexity=0.5, seed=1))
    again = select_flags(frame, SelectConfig(mode="random", m_complexity=0.5, seed=1))
    other = select_flags(frame, SelectConfig(mode="random", m_complexity=0.5, seed=2))
    for flag in ("hard", "sparse", "low_quality"):
        assert first.flags[flag].sum() == sigma.flags[flag].sum() > 0
        assert flagged(first, flag) == flagged(again, flag)
    assert any(flagged(first, f) != flagged(other, f) for f in ("hard", "sparse", "low_quality"))
    assert any(flagged(first, f) != flagged(sigma, f) for f in ("hard", "sparse", "low_quality"))
    nan_ids = frame.filter(pl.col("quality").is_nan())["id"].to_list()
    assert not set(flagged(first, "low_quality")) & set(nan_ids)


def test_join_is_one_to_one_by_id():
    data = pl.DataFrame({"id": ["a", "b"]})
    scores = pl.DataFrame({"id": ["b", "a"], "loss_pre": [2.0, 1.0], "loss_cur": [2.0, 1.0]})
    knn = pl.DataFrame({"id": ["a", "b"], "knn_sim": [0.5, 0.6]})
    joined = join_signals(data, {"scores": scores, "knn": knn, "ratings": pl.DataFrame({"id": ["a", "b"],
                                                                                         "quality": [1.0, 2.0]})})
    assert joined.sort("id")["loss_pre"].to_list() == [1.0, 2.0]
    with pytest.raises(JoinError, match="only in dataset"):
        join_signals(data, {"knn": knn.head(1)})
    with pytest.raises(JoinError, match="not unique"):
        join_signals(data, {"knn": pl.concat([knn, knn.head(1)])})


def test_config_checks_values():
    with pytest.raises(ConfigError, match="select.budget_quality"):
        section(SelectConfig, {"select": {"budget_quality": 1.5}}, "select")
    with pytest.raises(ConfigError, match="choose one of"):
        section(SelectConfig, {"select": {"mode": "top"}}, "select")


def test_stage_writes_flags_metrics_and_plot(tmp_path):
    from stages.select import main

    messages = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(9)]
    data = pl.DataFrame({"id": IDS, "messages": messages, "source": "t", "round": 0, "parent": None, "op": "seed",
                         "meta": "{}"}).cast(dict(SAMPLE_SCHEMA))
    write_samples(data, tmp_path / "dataset.parquet")
    frame = joined_frame().reverse()  # tables in another order than the dataset: joined by id
    frame.select("id", "loss_pre", "loss_cur").write_parquet(tmp_path / "scores.parquet")
    frame.select("id", "knn_sim").write_parquet(tmp_path / "knn.parquet")
    frame.select("id", "quality").write_parquet(tmp_path / "ratings.parquet")
    (tmp_path / "params.yaml").write_text("select:\n  mode: sigma\n  m_quality: 1.0\n")
    paths = {name: tmp_path / f"{name}.parquet" for name in ("dataset", "scores", "knn", "ratings", "flags")}
    main(["--data", str(paths["dataset"]), "--scores", str(paths["scores"]), "--knn", str(paths["knn"]),
          "--ratings", str(paths["ratings"]), "--output", str(paths["flags"]), "--metrics", str(tmp_path / "m.json"),
          "--plot", str(tmp_path / "hist.csv"), "--params", str(tmp_path / "params.yaml")])
    flags = pl.read_parquet(paths["flags"])
    assert flags.columns == ["id", "hard", "sparse", "low_quality", "reasons"]
    assert flags["id"].to_list() == IDS  # dataset order
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["counts"] == {"hard": 1, "sparse": 1, "low_quality": 1, "any": 2, "none": 7}
    assert metrics["overlaps"]["hard_and_sparse"] == 1 and metrics["nan_ratings"] == 1
    assert metrics["thresholds"]["low_quality"]["quality"] == pytest.approx(3.0)
    hist = pl.read_csv(tmp_path / "hist.csv")
    assert set(hist["signal"]) == {"loss_pre", "loss_cur", "knn_sim", "quality"}
    assert hist.filter(pl.col("signal") == "quality")["count"].sum() == 8
    assert hist.filter(pl.col("signal") == "knn_sim")["flagged"].sum() == 1
