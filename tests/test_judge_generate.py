"""Generate mode: replies equal greedy generation; a strict parser; an unparseable reply is NaN, never 0."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
from judge_helpers import make_samples

from middo.model.config import ModelConfig
from middo.model.load import load_model
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, histogram, judge_samples, ratings_table
from middo.signals.judge_encode import encode_ratings
from middo.signals.judge_local import rate_local
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


def test_replies_from_the_tree_equal_greedy_generation_on_each_full_prompt(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():  # random weights of a large scale: replies differ per prompt, so a leak between them shows
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    samples = make_samples(4)
    expected = []
    for sample in samples:
        encoded = encode_ratings(tokenizer, sample["id"], sample["messages"], 1000)
        for j in range(len(ASPECTS)):
            ids = torch.tensor([encoded.prompt_ids(j)])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                 do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
            expected.append(tokenizer.decode(out[0, ids.shape[1]:].tolist(), skip_special_tokens=False))
    for budget in (400, 100_000):  # one sample per batch, and all in one
        rated = rate_local(model, tokenizer, samples, budget, generate=True, max_new_tokens=6, progress=False)
        got = [reply for replies in rated.replies for reply in replies]
        assert got == [text.removesuffix(tokenizer.eos_token) for text in expected]
        assert len(set(got)) > 6  # the six prompts of a sample really get different replies
