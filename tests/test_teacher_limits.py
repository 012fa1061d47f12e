"""Spending caps and client-side rate limits of the `openai` backend against the loopback server."""

from __future__ import annotations

import pytest

from middo.errors import ConfigError
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.limits import BudgetExceeded, estimate_prompt_tokens
from middo.teacher.server import ChatServer, Reply


def _cfg(server: ChatServer, tmp_path, **overrides) -> TeacherConfig:
    values = {"backend": "openai", "base_url": server.base_url, "model": "loop", "api_key_env": "MIDDO_TEST_UNSET",
              "cache_path": str(tmp_path / "cache.sqlite"), "backoff_base_s": 0.01, "backoff_max_s": 0.05,
              **overrides}
    return TeacherConfig(**values)


def _requests(n: int, max_tokens: int = 10) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"prompt {i}"}], 0.0, max_tokens, "simplify") for i in range(n)]


def _echo(body: dict) -> Reply:
    return Reply("re: " + body["messages"][-1]["content"], prompt_tokens=10, completion_tokens=3)


@pytest.mark.parametrize(("cap", "value", "sent"), [
    ("max_requests", 4, 4),
    # worst case per request: estimate (8 characters -> 2 + 4 per message = 6) + max_tokens 10 = 16; real use 13 each
    ("max_total_tokens", 60, 4),
    # prices per million: 13 real tokens cost 10*1 + 3*2 = 16e-6; the worst case 6*1 + 10*2 = 26e-6
    ("max_cost", 70e-6, 3),
])
def test_a_cap_stops_before_the_request_that_would_cross_it(tmp_path, cap, value, sent):
    prices = {"input": 1.0, "output": 2.0}
    with ChatServer(_echo) as server:
        with make_teacher(_cfg(server, tmp_path, concurrency=1, prices=prices, **{cap: value})) as teacher:
            replies = teacher.complete(_requests(8))
            assert server.stats.total == sent
            assert [r.ok for r in replies] == [True] * sent + [False] * (8 - sent)
            assert {r.error_kind for r in replies[sent:]} == {"budget"}
            with pytest.raises(BudgetExceeded, match=rf"teacher.{cap} = .* reached.*spent {sent} requests.*Raise "
                                                     rf"teacher.{cap}"):
                teacher.check_budget()
        # cached replies cost nothing: the same cap now lets the rest through
        with make_teacher(_cfg(server, tmp_path, concurrency=1, prices=prices, **{cap: value})) as teacher:
            second = teacher.complete(_requests(8)[:sent])
            assert all(r.cached for r in second)
            teacher.check_budget()


def test_no_cap_means_no_stop(tmp_path):
    with ChatServer(_echo) as server, make_teacher(_cfg(server, tmp_path, concurrency=4)) as teacher:
        assert all(r.ok for r in teacher.complete(_requests(10)))
        teacher.check_budget()


def test_rpm_120_sends_at_most_two_requests_in_any_second(tmp_path):
    with ChatServer(_echo) as server:
        with make_teacher(_cfg(server, tmp_path, concurrency=8, rpm=120)) as teacher:
            assert all(r.ok for r in teacher.complete(_requests(7)))
        arrivals = sorted(server.stats.arrivals)
    # 20 ms under one second: the client spaces requests 0.5 s apart; loopback jitter is far below that
    busiest = max(sum(start <= t < start + 0.98 for t in arrivals) for start in arrivals)
    assert busiest <= 2 and arrivals[-1] - arrivals[0] >= 2.9


def test_tpm_spaces_requests_by_their_tokens(tmp_path):
    per_request = estimate_prompt_tokens(_requests(1)[0]) + 10
    with ChatServer(_echo) as server:
        with make_teacher(_cfg(server, tmp_path, concurrency=8, tpm=per_request * 120)) as teacher:
            assert all(r.ok for r in teacher.complete(_requests(4)))
        arrivals = sorted(server.stats.arrivals)
    assert arrivals[-1] - arrivals[0] >= 0.9  # a burst of 2 requests, then one each 0.5 s


@pytest.mark.parametrize(("values", "message"), [
    ({"max_cost": 1.0}, "needs teacher.prices"),
    ({"prices": {"inptu": 1.0}}, "unknown keys"),
    ({"rpm": -1}, "teacher.rpm"),
    ({"mode": "batch", "cache_path": ""}, "needs teacher.cache_path"),
])
def test_volume_settings_are_checked(values, message):
    with pytest.raises(ConfigError, match=message):
        TeacherConfig(base_url="http://127.0.0.1:1/v1", **values)
