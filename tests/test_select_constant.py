"""Select on columns without spread: constant, one-ulp noise, near zero, a single row; NaN handling unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from middo.selection import SelectConfig, select_flags
from middo.selection.rules import SIGNALS

N = 300
FLAT = {"loss_pre": 7.3, "loss_cur": 7.3, "knn_sim": 2.3 / 10, "quality": 2.3}
"""Values whose mean over N copies is off by an ulp on the side that used to flag every row (checked below)."""
CASES = [("hard", "loss_pre"), ("hard", "loss_cur"), ("sparse", "knn_sim"), ("low_quality", "quality")]
# m < 1 is where one ulp of σ turned every row into a flag (the shipped demo uses m_quality 0.25); 0 is the extreme
LOW_M = {"m_complexity": 0.0, "m_diversity": 0.25, "m_quality": 0.25}


def spread_frame(n: int = N) -> pl.DataFrame:
    """Columns with a real spread, in which each test makes one column flat."""
    rng = np.random.default_rng(3)
    return pl.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)], "loss_pre": rng.gamma(2.0, 1.0, n), "loss_cur": rng.gamma(2.0, 1.0, n),
        "knn_sim": rng.uniform(0.3, 0.95, n), "quality": rng.normal(6, 1.5, n),
    })


def with_column(name: str, values: np.ndarray) -> pl.DataFrame:
    frame = spread_frame(len(values))
    return frame.with_columns(pl.Series(name, values, dtype=pl.Float64))


def ulp_noise(value: float, n: int = N) -> np.ndarray:
    """`value` and its two float64 neighbours, in turn."""
    return np.array([value, np.nextafter(value, math.inf), np.nextafter(value, -math.inf)] * (n // 3))


def count(selection, flag: str) -> int:
    return int(selection.flags[flag].sum())


def test_flat_values_would_flag_every_row_without_the_epsilon():
    """The case is real: numpy's σ of these constant columns is one ulp, not 0, and on the flagging side of μ."""
    for name, value in FLAT.items():
        column = np.full(N, value)
        assert 0 < column.std() < 1e-14
        assert (column.mean() < value) if name.startswith("loss") else (column.mean() > value)


@pytest.mark.parametrize("mode", ["sigma", "budget", "random"])
@pytest.mark.parametrize(("flag", "name"), CASES)
def test_constant_column_flags_nothing(flag, name, mode):
    selection = select_flags(with_column(name, np.full(N, FLAT[name])), SelectConfig(mode=mode, **LOW_M))
    assert selection.stats[name].std == 0.0
    assert count(selection, flag) == 0
    assert sum(count(selection, other) > 0 for other in SIGNALS if other != flag) == 2  # the others still flag


@pytest.mark.parametrize(("flag", "name"), CASES)
def test_one_ulp_noise_flags_nothing(flag, name):
    selection = select_flags(with_column(name, ulp_noise(FLAT[name])), SelectConfig(**LOW_M))
    assert np.std(selection.columns[name]) > 0 and selection.stats[name].std == 0.0
    assert count(selection, flag) == 0


@pytest.mark.parametrize(("flag", "name"), CASES)
def test_noise_around_zero_flags_nothing(flag, name):
    """|μ| ≈ 0: the epsilon's floor keeps rounding noise around 0 from counting as spread."""
    selection = select_flags(with_column(name, ulp_noise(0.0) + ulp_noise(1e-17)), SelectConfig(**LOW_M))
    assert selection.stats[name].std == 0.0 and count(selection, flag) == 0


@pytest.mark.parametrize(("flag", "name"), CASES)
def test_a_small_real_spread_still_flags(flag, name):
    """One sample 1e-3 away from 299 equal ones stands out: the epsilon only swallows rounding."""
    values = np.full(N, FLAT[name])
    values[5] += 1e-3 if flag == "hard" else -1e-3
    frame = with_column(name, values)
    if flag == "hard":  # hard also needs the other loss high
        other = "loss_cur" if name == "loss_pre" else "loss_pre"
        frame = frame.with_columns(pl.when(pl.col("id") == "r005").then(100.0).otherwise(pl.col(other)).alias(other))
    selection = select_flags(frame, SelectConfig(**LOW_M))
    assert selection.stats[name].std > 0
    assert selection.flags[flag].to_list() == [row == 5 for row in range(N)]


@pytest.mark.parametrize("mode", ["sigma", "budget", "random"])
def test_single_row_flags_nothing(mode):
    frame = spread_frame(1)
    selection = select_flags(frame, SelectConfig(mode=mode, m_complexity=0, m_diversity=0, m_quality=0,
                                                 budget_complexity=1, budget_diversity=1, budget_quality=1))
    assert all(stat.std == 0.0 for stat in selection.stats.values())
    assert selection.flags.row(0, named=True) == {"id": "r000", "hard": False, "sparse": False, "low_quality": False,
                                                   "reasons": []}


@pytest.mark.parametrize(("flag", "name"), CASES)
def test_nan_rows_are_counted_and_never_flag_beside_a_constant_column(flag, name):
    values = np.full(N, FLAT[name])
    values[:7] = math.nan
    selection = select_flags(with_column(name, values), SelectConfig(**LOW_M))
    assert selection.stats[name].n_nan == 7 and selection.stats[name].mean == pytest.approx(FLAT[name])
    assert selection.stats[name].std == 0.0 and count(selection, flag) == 0
    selection = select_flags(with_column(name, np.r_[values[:7], spread_frame()[name].to_numpy()[7:]]),
                             SelectConfig(**LOW_M))
    assert selection.stats[name].n_nan == 7 and count(selection, flag) > 0
    assert not selection.flags[flag][:7].any()


def test_stage_reports_and_logs_a_column_without_spread(tmp_path, caplog):
    from middo.data.schema import SAMPLE_SCHEMA, write_samples
    from middo.selection.run import SelectPaths, run_select

    frame = with_column("quality", np.full(N, FLAT["quality"]))
    messages = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]] * N
    write_samples(pl.DataFrame({"id": frame["id"], "messages": messages, "source": "t", "round": 0, "parent": None,
                                "op": "seed", "meta": "{}"}).cast(dict(SAMPLE_SCHEMA)), tmp_path / "d.parquet")
    for name, columns in (("scores", ["loss_pre", "loss_cur"]), ("knn", ["knn_sim"]), ("ratings", ["quality"])):
        frame.select("id", *columns).write_parquet(tmp_path / f"{name}.parquet")
    paths = SelectPaths(tmp_path / "d.parquet", tmp_path / "scores.parquet", tmp_path / "knn.parquet",
                        tmp_path / "ratings.parquet", tmp_path / "flags.parquet", tmp_path / "select.json")
    with caplog.at_level("WARNING", logger="middo"):
        run_select(paths, SelectConfig(**LOW_M))
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["no_spread"] == ["quality"] and metrics["counts"]["low_quality"] == 0
    assert metrics["stats"]["quality"]["std"] == 0.0
    assert "quality has no spread" in caplog.text
