"""The `reference` preset selects exactly what the reference's rules select, on random tables with NaNs, ties and
constant columns: an independent implementation of those rules, written here from the paper's description, is run
beside middo's select (its rules, and its stage with the tables on disk in shuffled row orders).

The reference's rules (Middo, arXiv 2508.21589, and its scripts), where they are not bugs:
- hard: loss_pre > mean + m·std and loss_cur > mean + m·std, each over its own column;
- sparse: knn_sim < mean − m·std;
- low quality: quality < mean − m·std, with the sample std (the population std for the other two);
- m = 1 for each; comparisons are strict. The rules are evaluated exactly, in fractions, so a constant column has
  std 0 and flags nothing, and a value exactly at its threshold (the smaller of two values is at μ − σ) does not
  flag. A NaN value (middo's unreadable rating; the reference's 0 was a bug) is left out of the mean and std and
  never flags. A sample std of one value is 0.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
import yaml

from middo.config import section
from middo.data.schema import SAMPLE_SCHEMA, sample_id, write_samples
from middo.demo.params import DEMO_PARAMS
from middo.pipeline.params_file import SECTIONS, render_params
from middo.reference import REFERENCE
from middo.selection import SelectConfig, select_flags
from middo.selection.run import SelectPaths, run_select

COLUMNS = ("loss_pre", "loss_cur", "knn_sim", "quality")
SEEDS = range(600)


def reference_flags(table: dict[str, list[float]], m: float = 1.0) -> dict[str, list[bool]]:
    """The reference's three flags per row, from plain Python lists (NaN = no value), in exact arithmetic."""
    beyond = {name: _beyond(values, Fraction(m), sample=name == "quality", above=name.startswith("loss"))
              for name, values in table.items()}
    rows = range(len(table["quality"]))
    return {"hard": [beyond["loss_pre"][i] and beyond["loss_cur"][i] for i in rows],
            "sparse": [beyond["knn_sim"][i] for i in rows],
            "low_quality": [beyond["quality"][i] for i in rows]}


def _beyond(values: list[float], m: Fraction, sample: bool, above: bool) -> list[bool]:
    """Per value: strictly more than m std above (or below) the mean, over the values that are not NaN.

    In fractions: v < mean − m·std  ⟺  d = mean − v > 0 and d² > m²·variance (likewise above), so a value exactly
    at the threshold, as the smaller of two values is, never counts."""
    present = [Fraction(v) for v in values if not math.isnan(v)]
    n = len(present)
    if n == 0:
        return [False] * len(values)
    mean = sum(present) / n
    squares = sum((v - mean) ** 2 for v in present)
    variance = (squares / (n - 1) if n > 1 else Fraction(0)) if sample else squares / n
    out = []
    for value in values:
        if math.isnan(value):
            out.append(False)
            continue
        d = Fraction(value) - mean if above else mean - Fraction(value)
        out.append(d > 0 and d * d > m * m * variance)
    return out


def random_column(rng: np.random.Generator, name: str, n: int) -> np.ndarray:
    """Continuous, tied (on a grid) or constant values, with some NaNs."""
    kind = rng.choice(["continuous", "ties", "constant"], p=[0.4, 0.4, 0.2])
    if kind == "constant":
        values = np.full(n, rng.choice([0.0, 2.3, 7.3, 0.23, 1 / 3]))
    elif kind == "ties" and name == "quality":
        values = rng.integers(0, 61, n) / 6  # the mean of six 0-10 ratings
    elif kind == "ties":
        values = rng.integers(0, 5, n) * 0.25
    else:
        values = rng.gamma(2.0, 1.0, n) if name.startswith("loss") else rng.uniform(-0.2, 1.0, n)
    nan_rate = rng.choice([0.0, 0.1, 0.5, 1.0], p=[0.4, 0.3, 0.25, 0.05])
    values[rng.random(n) < nan_rate] = math.nan
    return values


def random_table(seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 3, int(rng.integers(4, 80))]))
    messages = [[{"role": "user", "content": f"q{seed}-{i}"}, {"role": "assistant", "content": "a"}] for i in range(n)]
    return pl.DataFrame({"id": [sample_id(m) for m in messages], "messages": messages,
                         **{name: random_column(rng, name, n) for name in COLUMNS}})


def reference_config() -> SelectConfig:
    """The select section of a params.yaml written with the preset, loaded the way the stage loads it."""
    overlay = {name: {**DEMO_PARAMS.get(name, {}), **REFERENCE.get(name, {})} for name in {*DEMO_PARAMS, *REFERENCE}}
    return section(SelectConfig, yaml.safe_load(render_params(overlay)), "select")


def disagreements(table: pl.DataFrame, flags: pl.DataFrame) -> dict[str, int]:
    expected = reference_flags({name: table[name].to_list() for name in COLUMNS})
    return {flag: int((flags[flag].to_numpy() != np.array(want)).sum()) for flag, want in expected.items()}


def test_the_preset_sets_the_reference_rules():
    config = reference_config()
    assert (config.mode, config.m_complexity, config.m_diversity, config.m_quality) == ("sigma", 1.0, 1.0, 1.0)
    assert config.quality_std == "sample" and config.ddof("quality") == 1 and config.ddof("knn_sim") == 0


def test_select_rules_agree_with_the_reference_on_random_tables():
    config = reference_config()
    total, flagged, constant = {"hard": 0, "sparse": 0, "low_quality": 0}, 0, 0
    for seed in SEEDS:
        table = random_table(seed)
        flags = select_flags(table.select("id", *COLUMNS), config).flags
        for flag, count in disagreements(table, flags).items():
            total[flag] += count
        flagged += int(flags.select(pl.any_horizontal("hard", "sparse", "low_quality")).to_series().sum())
        constant += sum(table[name].drop_nans().n_unique() == 1 for name in COLUMNS)
    assert total == {"hard": 0, "sparse": 0, "low_quality": 0}
    assert flagged > 1000 and constant > 100  # the tables exercise both flagging and constant columns


def test_the_comparison_is_sensitive_to_the_quality_std_and_to_ties():
    """The agreement above is not vacuous: the population σ for quality disagrees with the reference, and so did
    the former comparison that let rounding decide a tie."""
    population = SelectConfig(**{**REFERENCE["select"], "quality_std": "population"})
    missed = sum(disagreements(t, select_flags(t.select("id", *COLUMNS), population).flags)["low_quality"]
                 for t in map(random_table, SEEDS))
    assert missed > 0
    two = pl.DataFrame({"id": ["a", "b"], "loss_pre": [1.0, 2.0], "loss_cur": [3.0, 4.0],
                        "knn_sim": [0.014321086112487919, 0.7266897755860708], "quality": [4.0, 7.5]})
    flags = select_flags(two, reference_config()).flags
    assert not flags.select(pl.any_horizontal("hard", "sparse", "low_quality")).to_series().any()


@pytest.mark.parametrize("seed", [3, 11, 42, 77, 123])
def test_select_stage_agrees_with_the_reference_when_tables_come_in_any_order(seed, tmp_path):
    table = random_table(seed + 10_000)
    while table.height < 20:
        seed += 1
        table = random_table(seed + 10_000)
    samples = table.select("id", "messages").with_columns(
        source=pl.lit("seed"), round=pl.lit(0), parent=pl.lit(None), op=pl.lit("seed"), meta=pl.lit("{}"))
    paths = SelectPaths(tmp_path / "dataset.parquet", tmp_path / "scores.parquet", tmp_path / "knn.parquet",
                        tmp_path / "ratings.parquet", tmp_path / "flags.parquet", tmp_path / "select.json")
    write_samples(samples.cast(dict(SAMPLE_SCHEMA)), paths.data)
    for path, names in ((paths.scores, ["loss_pre", "loss_cur"]), (paths.knn, ["knn_sim"]),
                        (paths.ratings, ["quality"])):
        table.select("id", *names).sample(fraction=1.0, shuffle=True, seed=seed).write_parquet(path)
    run_select(paths, reference_config())
    flags = pl.read_parquet(paths.output)
    assert flags["id"].to_list() == table["id"].to_list()
    assert disagreements(table, flags) == {"hard": 0, "sparse": 0, "low_quality": 0}
    assert json.loads(paths.metrics.read_text())["n_samples"] == table.height


def test_the_preset_file_and_module_agree_and_every_value_loads():
    with open("docs/presets/reference.yaml", encoding="utf-8") as file:
        assert yaml.safe_load(file) == REFERENCE
    overlay = {name: {**DEMO_PARAMS.get(name, {}), **REFERENCE.get(name, {})} for name in {*DEMO_PARAMS, *REFERENCE}}
    params = yaml.safe_load(render_params(overlay))
    for name, cls in SECTIONS:
        if name in params:
            section(cls, params, name)


@pytest.mark.parametrize(("name", "values", "message"), [
    ("select", {"quality_sdt": "sample"}, "did you mean select.quality_std"),
    ("select", {"quality_std": "ddof1"}, "choose one of"),
    ("judge", {"prompt_sees_respons": True}, "did you mean judge.prompt_sees_response"),
    ("judge", {"parse": "lenient"}, "choose one of"),
    ("refine", {"hard_and_low": "both"}, "did you mean refine.hard_and_low_quality"),
    ("refine", {"answer_style": "long"}, "choose one of"),
    ("refine", {"show_response": "no"}, "true or false"),
    ("refine", {"hint_chars": 5}, "or 0 to keep hints whole"),
])
def test_the_new_params_are_checked_like_every_other(name, values, message):
    from middo.errors import ConfigError
    from middo.refine.config import RefineConfig
    from middo.signals.config import JudgeConfig

    cls = {"select": SelectConfig, "judge": JudgeConfig, "refine": RefineConfig}[name]
    with pytest.raises(ConfigError, match=message):
        section(cls, {name: values}, name)
