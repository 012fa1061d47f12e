"""The simulated judge: ratings that see typos, missing parts and wrong answers, errors at the configured rate, and
the `openai` judge mode reading them over real HTTP from the loopback server."""

from __future__ import annotations

import math
import random

import numpy as np

from middo.demo.defects import noisy_words, underspecified
from middo.demo.families import FAMILIES
from middo.demo.generate import SuiteConfig, seed_rows
from middo.demo.metrics import auroc
from middo.demo.sim_judge import GOOD, is_rating_request, rate, sample_ratings
from middo.demo.tasks import render, solve
from middo.demo.teacher import FRAMES, simulate
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, judge_samples
from middo.signals.judge_parse import parse_rating
from middo.signals.judge_prompts import ASPECTS, load_judge_prompts
from middo.teacher import TeacherConfig, make_teacher

RATING = load_judge_prompts()


def chat(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def clean_items(per_family: int = 10, seed: int = 0):
    rng = random.Random(seed)
    return [fam.draw(rng, hard=False) for fam in FAMILIES.values() for _ in range(per_family)]


def test_clean_samples_get_good_ratings_in_every_phrasing_and_teacher_frame():
    for item in clean_items():
        for index in range(len(FAMILIES[item.family].templates(item))):
            for frame in ("{q}", *FRAMES[1:3]):
                ratings = sample_ratings(frame.format(q=render(item, index)), solve(item))
                assert set(ratings.values()) == {GOOD}, (item, index, ratings)


def test_a_wrong_answer_lowers_response_factuality_only():
    rng = random.Random(1)
    for item in clean_items():
        ratings = sample_ratings(render(item, 0), FAMILIES[item.family].wrong(item, rng))
        assert ratings["response_factuality"] < 3
        assert all(value == GOOD for aspect, value in ratings.items() if aspect != "response_factuality")


def test_typos_lower_clarity_and_a_missing_part_lowers_completeness():
    rng = random.Random(2)
    for item in clean_items():
        noisy = render(item, 0, edit_literal=lambda words: noisy_words(words, rng, rate=1.0))
        if noisy != render(item, 0):
            assert sample_ratings(noisy, solve(item))["prompt_clarity"] < 5, noisy
        missing = sample_ratings(render(underspecified(item), 0), solve(item))
        assert missing["prompt_completeness"] < 3 and missing["response_factuality"] < 5


def test_unreadable_prompts_rate_low_and_other_requests_are_not_rating_prompts():
    assert np.mean(list(sample_ratings("Tell me something nice.", "Sure.").values())) < 5
    messages = RATING.sample_rating_messages(chat("What is 2 + 3?", "5"))
    assert all(is_rating_request(m[0]["content"]) for m in messages)
    assert [rate(m[0]["content"]) for m in messages] == [GOOD] * len(ASPECTS)
    assert not is_rating_request("What is 2 + 3?") and rate("What is 2 + 3?") is None


def quality(rows: list[dict], error_rate: float) -> np.ndarray:
    """Mean of the non-NaN parsed ratings per row, each rating answered by `simulate`."""
    ratings = [[parse_rating(simulate({"messages": messages}, error_rate).text)
                for messages in RATING.sample_rating_messages(row["messages"])] for row in rows]
    return np.nanmean(np.array(ratings, dtype=float), axis=1)


def test_quality_ranks_planted_prompt_and_answer_defects_low_on_a_suite():
    rows = seed_rows(SuiteConfig(n_seed=400, seed=5))
    planted = [row["planted"] for row in rows]
    exact = quality(rows, error_rate=0.0)
    assert auroc(-exact, [p in ("garbled", "wrong_answer") for p in planted]) > 0.97
    assert auroc(-exact, [p == "garbled" for p in planted]) > 0.75
    assert all(exact[i] == GOOD for i, p in enumerate(planted) if p in (None, "over_hard", "rare_family"))
    assert auroc(-quality(rows, error_rate=0.1), [p in ("garbled", "wrong_answer") for p in planted]) > 0.85


def test_errors_are_careless_or_unparseable_ratings_at_the_configured_rate():
    rows = seed_rows(SuiteConfig(n_seed=200, seed=6))
    outcomes = [simulate({"messages": m}, 0.3) for row in rows for m in RATING.sample_rating_messages(row["messages"])]
    modes = {mode: sum(o.mode == mode for o in outcomes) / len(outcomes) for mode in ("wrong", "unmarked")}
    assert 0.06 < modes["wrong"] < 0.14 and 0.06 < modes["unmarked"] < 0.14
    assert all(math.isnan(parse_rating(o.text)) for o in outcomes if o.mode == "unmarked")
    assert all(0 <= parse_rating(o.text) <= 10 for o in outcomes if o.mode != "unmarked")


def test_openai_judge_mode_reads_the_simulated_judge_over_http():
    rows = seed_rows(SuiteConfig(n_seed=100, seed=7))[:60]
    samples = [{"id": f"s{i}", "messages": row["messages"]} for i, row in enumerate(rows)]
    teacher_cfg = TeacherConfig(backend="sim", options={"error_rate": 0.2}, concurrency=4, backoff_base_s=0.0)
    with make_teacher(teacher_cfg) as teacher:
        result = judge_samples(samples, Judge(JudgeConfig(mode="openai"), "unused", None, teacher))
        usage = teacher.usage()
    unmarked = sum(simulate({"messages": m}, 0.2).mode == "unmarked"
                   for row in rows for m in RATING.sample_rating_messages(row["messages"]))
    assert result.metrics["parse_failures"] == unmarked > 0
    assert result.metrics["nan_ratings"] == unmarked and result.metrics["failed_requests"] == 0
    assert usage["simulated"] is True and usage["requests"] == len(samples) * len(ASPECTS)
    expected = quality(rows, error_rate=0.2)
    assert result.table["id"].to_list() == [s["id"] for s in samples]
    assert np.allclose(result.table["quality"].to_numpy(), expected, equal_nan=True)
