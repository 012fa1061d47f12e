"""Generate mode: a strict parser; an unparseable reply is NaN and counted, never 0."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from judge_helpers import make_samples

from middo.model.config import ModelConfig
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, histogram, judge_samples, ratings_table
from middo.signals.judge_parse import first_number, parse_first_number, parse_rating
from middo.signals.judge_prompts import ASPECTS


@pytest.mark.parametrize(("reply", "rating"), [("7", 7.0), (" 10 ", 10.0), ("0", 0.0), ("7/10", 7.0), ("8.", 8.0)])
def test_strict_parser_reads_bare_ratings(reply, rating):
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", ["seven", "7 because it is clear", "11", "", None, "-3", "7.5", "Score: 7", "\n\n"])
def test_strict_parser_refuses_anything_else(reply):
    assert math.isnan(parse_rating(reply))


def test_reference_first_number_parser_is_lenient():
    assert first_number("Score: 7 because") == 7.0 and first_number("42") == 10.0 and first_number("none") == 0.0


@pytest.mark.parametrize(("reply", "rating"), [("Score: 7 because", 7.0), ("8.5/10, clear", 8.5), ("42", 10.0),
                                               ("7 because it is clear", 7.0), ("-3", 3.0)])
def test_first_number_setting_reads_the_reference_way(reply, rating):
    assert parse_first_number(reply) == rating


@pytest.mark.parametrize("reply", ["none", "", None, "seven"])
def test_first_number_setting_is_nan_without_a_number_never_zero(reply):
    assert math.isnan(parse_first_number(reply)) and first_number(reply) == 0.0  # the reference's bug: 0


def test_unparseable_generated_replies_are_nan_and_counted(tiny_model_dir):
    samples = make_samples(3)  # the untrained tiny model replies with noise, never a bare number
    judge = Judge(JudgeConfig(mode="generate", max_new_tokens=4, token_budget=4096), tiny_model_dir,
                  ModelConfig(base="unused", device="cpu"))
    result = judge_samples(samples, judge)
    ratings = result.table.select(ASPECTS).to_numpy()
    assert np.isnan(ratings).all() and result.table["quality"].is_nan().all()
    assert result.metrics["parse_failures"] == 18 and result.metrics["nan_ratings"] == 18
    assert result.metrics["parse_failure_rate"] == 1.0 and result.metrics["nan_quality"] == 3


def test_quality_is_the_mean_of_the_ratings_that_exist():
    ratings = np.array([[7, 8, np.nan, 9, np.nan, np.nan], [np.nan] * 6, [1, 2, 3, 4, 5, 6]], dtype=float)
    table = ratings_table(["a", "b", "c"], ratings)
    assert table["quality"][0] == pytest.approx(8.0) and math.isnan(table["quality"][1])
    assert table["quality"][2] == pytest.approx(3.5)
    hist = histogram(table)
    assert hist["score"].to_list() == list(range(11))
    assert hist["prompt_factuality"].sum() == 2 and hist["quality"].sum() == 2  # NaN left out
    assert hist.filter(pl.col("score") == 8)["quality"].item() == 1
