"""The openai judge against a real loopback OpenAI-compatible server: logprobs path, parse path, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from judge_helpers import make_samples

from middo.model.config import ModelConfig
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, judge_samples
from middo.signals.judge_prompts import ASPECTS, load_judge_prompts
from middo.teacher import TeacherConfig, make_teacher
from middo.teacher.server import ChatServer, Reply

KEY_ENV = "MIDDO_JUDGE_TEST_KEY"


def _aspect(body: dict) -> str:
    content = body["messages"][-1]["content"]
    return next(aspect for aspect in ASPECTS if load_judge_prompts().questions[aspect] in content)


def _teacher(server: ChatServer, cache_path: str = "") -> TeacherConfig:
    return TeacherConfig(backend="openai", base_url=server.base_url, model="loopback-model", api_key_env=KEY_ENV,
                         cache_path=cache_path, max_retries=0)


def _judge(samples, teacher_cfg: TeacherConfig):
    with make_teacher(teacher_cfg) as teacher:
        judge = Judge(JudgeConfig(mode="openai"), "unused", ModelConfig(base="unused"), teacher)
        result = judge_samples(samples, judge)
        result.metrics["teacher_usage"] = teacher.usage()
    return result


def with_logprobs(body: dict) -> Reply:
    aspect = _aspect(body)
    if aspect == "prompt_factuality":
        return Reply("7", top_logprobs=[{"7": math.log(0.6), "8": math.log(0.3), "x": math.log(0.1)}])
    if aspect == "prompt_clarity":  # "10" from a tokenizer that writes it as "1" then "0"
        return Reply("10", top_logprobs=[{"1": math.log(0.55), "9": math.log(0.45)},
                                         {"0": math.log(0.8), "<|end|>": math.log(0.2)}])
    return Reply("5", top_logprobs=[{"5": 0.0}])


def test_logprobs_give_the_expected_score(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    samples = make_samples(3)
    with ChatServer(with_logprobs) as server:
        result = _judge(samples, _teacher(server))
        bodies = list(server.stats.bodies)
    assert len(bodies) == 18 and all(b["logprobs"] and b["top_logprobs"] == 20 for b in bodies)
    assert all(b["temperature"] == 0 for b in bodies)
    table = result.table
    assert table["id"].to_list() == [s["id"] for s in samples]
    np.testing.assert_allclose(table["prompt_factuality"].to_numpy(), (7 * 0.6 + 8 * 0.3) / 0.9)
    np.testing.assert_allclose(table["prompt_clarity"].to_numpy(), 0.55 * 0.2 + 10 * 0.55 * 0.8 + 9 * 0.45)
    np.testing.assert_allclose(table["response_completeness"].to_numpy(), 5.0)
    assert result.metrics["logprob_ratings"] == 18 and result.metrics["nan_ratings"] == 0


def without_logprobs(body: dict) -> Reply:
    aspect = _aspect(body)
    if aspect == "response_clarity":
        return Reply("The response is very clear, I would say.")
    if aspect == "response_completeness":
        return Reply("bad request", status=400)
    return Reply({"prompt_factuality": "8", "prompt_clarity": "6/10"}.get(aspect, "4"))


def test_replies_without_logprobs_are_parsed_strictly(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    samples = make_samples(2)
    with ChatServer(without_logprobs) as server:
        result = _judge(samples, _teacher(server, str(tmp_path / "cache.sqlite")))
        again = _judge(samples, _teacher(server, str(tmp_path / "cache.sqlite")))
        requests = server.stats.total
    table = result.table
    assert table["prompt_factuality"].to_list() == [8.0, 8.0] and table["prompt_clarity"].to_list() == [6.0, 6.0]
    assert all(math.isnan(v) for v in table["response_clarity"].to_list() + table["response_completeness"].to_list())
    assert table["quality"].to_list() == pytest.approx([(8 + 6 + 4 + 4) / 4] * 2)  # NaN ratings left out, not 0
    metrics = result.metrics
    assert metrics["parse_failures"] == 2 and metrics["failed_requests"] == 2 and metrics["nan_ratings"] == 4
    assert metrics["parsed_replies"] == 10 and metrics["parse_failure_rate"] == pytest.approx(0.2)
    assert requests == 12 + 2  # the re-run is served by the request cache; only the failed requests are retried
    np.testing.assert_array_equal(again.table.drop("id").to_numpy(), table.drop("id").to_numpy())


def test_parse_setting_and_prompt_only_questions_reach_the_endpoint(monkeypatch):
    """`judge.parse: first_number` reads "Score: 6, because" as 6 (strict: NaN); a prompt question carries no
    response unless `judge.prompt_sees_response` is on."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    samples = make_samples(2)
    results = {}
    with ChatServer(lambda body: Reply("Score: 6, because it is fine.")) as server:
        for parse in ("strict", "first_number"):
            with make_teacher(_teacher(server)) as teacher:
                judge = Judge(JudgeConfig(mode="openai", parse=parse, max_failure_rate=1.0), "unused",
                              ModelConfig(base="unused"), teacher)
                results[parse] = judge_samples(samples, judge).table
        bodies = list(server.stats.bodies)
    assert np.isnan(results["strict"].select(ASPECTS).to_numpy()).all()
    assert (results["first_number"].select(ASPECTS).to_numpy() == 6.0).all()
    for body in bodies:
        content = body["messages"][-1]["content"]
        assert ("[RESPONSE]" in content) == (not _aspect(body).startswith("prompt_"))
