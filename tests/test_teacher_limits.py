"""Spending caps and client-side rate limits of the `openai` backend against the loopback server."""

from __future__ import annotations

import asyncio
import bisect
from types import SimpleNamespace

import pytest

from middo.errors import ConfigError
from middo.teacher import ChatRequest, TeacherConfig, limits, make_teacher
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


@pytest.mark.parametrize(("cap", "value", "submitted"), [
    ("max_requests", 4, 4),
    # inside one batch no reply settles a reservation before the next: each request counts its worst case, 16 tokens
    ("max_total_tokens", 60, 3),
    ("max_cost", 70e-6, 2),  # worst case 26e-6 each
])
def test_a_batch_submits_only_the_requests_the_caps_allow(tmp_path, cap, value, submitted):
    prices = {"input": 1.0, "output": 2.0}
    with ChatServer(_echo) as server:
        cfg = _cfg(server, tmp_path, mode="batch", batch_poll_s=0.01, prices=prices, **{cap: value})
        with make_teacher(cfg) as teacher:
            replies = teacher.complete(_requests(8))
            assert [r.ok for r in replies] == [True] * submitted + [False] * (8 - submitted)
            assert {r.error_kind for r in replies[submitted:]} == {"budget"}
            assert teacher.usage()["requests"] == submitted and teacher.usage()["failures"] == {
                "budget": 8 - submitted}
            assert teacher.complete(_requests(9)[8:])[0].error_kind == "budget"  # stopped for the rest of the stage
            with pytest.raises(BudgetExceeded, match=rf"teacher.{cap} = .* reached.*spent {submitted} requests"):
                teacher.check_budget()
            spent = teacher.budget.spent
        lines = [batch.counts["total"] for batch in server.batches.batches.values()]
        assert lines == [submitted] and server.stats.total == 0  # one batch of the allowed requests, nothing live
    assert spent.requests == submitted and spent.prompt_tokens == 10 * submitted  # settled at the real usage
    assert not cfg.max_total_tokens or spent.prompt_tokens + spent.completion_tokens <= cfg.max_total_tokens
    assert not cfg.max_cost or (spent.prompt_tokens * 1.0 + spent.completion_tokens * 2.0) / 1e6 <= cfg.max_cost


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


class VirtualClock:
    """`time.monotonic` and `asyncio.sleep` of `middo.teacher.limits` on a clock that a sleep moves forward."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_rpm_120_allows_two_requests_in_every_one_second_window_exactly(monkeypatch):
    clock = VirtualClock()
    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(limits, "asyncio", SimpleNamespace(sleep=clock.sleep, Lock=asyncio.Lock))
    limiter = limits.RateLimiter(TeacherConfig(base_url="http://127.0.0.1:1/v1", rpm=120))
    sent: list[float] = []

    async def one() -> None:
        await limiter.wait(_requests(1)[0])
        sent.append(clock.now)

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(240)))  # all at once: more than concurrency would ever allow

    asyncio.run(many())
    # every window [t, t + 1 s) from the first request on, no tolerance: the clock is exact
    assert max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent)) == 2
    assert max(bisect.bisect_left(sent, t + 60.0) - i for i, t in enumerate(sent)) == 120
    assert sent[-1] - sent[0] == 119.5


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
