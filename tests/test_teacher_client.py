"""The `openai` backend against the real loopback server: retries, Retry-After, timeouts, cache, concurrency."""

from __future__ import annotations

import collections
import sqlite3
import threading
import time

from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.client import OpenAITeacher
from middo.teacher.server import ChatServer, Reply

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}


def _teacher(server: ChatServer, tmp_path, **overrides) -> OpenAITeacher:
    values = {"backend": "openai", "base_url": server.base_url, "model": "loop", "api_key_env": "MIDDO_TEST_UNSET",
              "cache_path": str(tmp_path / "cache.sqlite"), **FAST, **overrides}
    teacher = make_teacher(TeacherConfig(**values))
    assert isinstance(teacher, OpenAITeacher)
    return teacher


def _requests(n: int, op: str = "simplify", **extra) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"prompt {i}"}], 0.0, 32, op, **extra) for i in range(n)]


def _echo(body: dict) -> Reply:
    return Reply("re: " + body["messages"][-1]["content"], prompt_tokens=10, completion_tokens=3)


def _content(body: dict) -> str:
    return body["messages"][-1]["content"]


def test_happy_path_keeps_order_and_counts_tokens_per_op(tmp_path):
    with ChatServer(_echo) as server:
        teacher = _teacher(server, tmp_path, concurrency=4)
        replies = teacher.complete(_requests(6) + _requests(2, op="improve"))
    expected = [f"re: prompt {i}" for i in range(6)] + ["re: prompt 0", "re: prompt 1"]
    assert [reply.text for reply in replies] == expected and all(reply.error is None for reply in replies)
    usage = teacher.usage()
    assert usage["failed"] == 0 and usage["retries"] == 0
    assert usage["tokens"] == {"simplify": {"prompt_tokens": 60, "completion_tokens": 18}}
    # the two `improve` requests repeat two `simplify` ones: sent once, shared as cache hits
    assert server.stats.total == 6 and usage["cache_hits"] == 2 and usage["requests"] == 6
    assert [reply.cached for reply in replies] == [False] * 6 + [True, True]


def test_429_retry_after_is_honoured_then_success(tmp_path):
    seen = collections.Counter()

    def handler(body):
        seen[_content(body)] += 1
        return Reply("busy", status=429, headers={"Retry-After": "1"}) if seen[_content(body)] == 1 else _echo(body)

    with ChatServer(handler) as server:
        replies = _teacher(server, tmp_path).complete(_requests(1))
    assert replies[0].text == "re: prompt 0"
    assert server.stats.by_status == {429: 1, 200: 1}
    first, second = server.stats.arrivals
    assert second - first >= 1.0  # backoff alone would wait at most backoff_max_s = 0.05 s


def test_429_retry_after_as_http_date(tmp_path):
    import email.utils

    seen = collections.Counter()

    def handler(body):
        seen[_content(body)] += 1
        if seen[_content(body)] == 1:
            return Reply("busy", status=429, headers={"Retry-After": email.utils.formatdate(time.time() + 2,
                                                                                              usegmt=True)})
        return _echo(body)

    with ChatServer(handler) as server:
        replies = _teacher(server, tmp_path).complete(_requests(1))
    first, second = server.stats.arrivals
    assert replies[0].text == "re: prompt 0" and second - first >= 1.0  # whole seconds: at least 1 s of the 2


def test_server_errors_are_retried_until_success(tmp_path):
    seen = collections.Counter()

    def handler(body):
        seen[_content(body)] += 1
        return Reply("overloaded", status=503) if seen[_content(body)] <= 2 else _echo(body)

    with ChatServer(handler) as server:
        teacher = _teacher(server, tmp_path, max_retries=3)
        replies = teacher.complete(_requests(3))
    assert [reply.text for reply in replies] == [f"re: prompt {i}" for i in range(3)]
    assert server.stats.by_status == {503: 6, 200: 3}
    assert teacher.usage()["retries"] == 6 and teacher.usage()["failed"] == 0


def test_client_errors_are_not_retried_but_408_is(tmp_path):
    def handler(body):
        if _content(body) == "prompt 0":
            return Reply("bad request", status=400)
        return Reply("timeout", status=408) if server.stats.by_status[408] == 0 else _echo(body)

    with ChatServer(handler) as server:
        teacher = _teacher(server, tmp_path, concurrency=1, max_retries=2)
        replies = teacher.complete(_requests(2))
    assert replies[0].text is None and replies[0].error.startswith("client_error: HTTP 400")
    assert replies[1].text == "re: prompt 1"
    assert server.stats.by_status == {400: 1, 408: 1, 200: 1}
    assert teacher.usage()["failures"] == {"client_error": 1}


def test_timeout_then_success(tmp_path):
    seen = collections.Counter()

    def handler(body):
        seen[_content(body)] += 1
        return Reply("late", delay_s=1.5) if seen[_content(body)] == 1 else _echo(body)

    with ChatServer(handler) as server:
        started = time.monotonic()
        replies = _teacher(server, tmp_path, timeout_s=0.3).complete(_requests(1))
        elapsed = time.monotonic() - started
    assert replies[0].text == "re: prompt 0"
    assert server.stats.total == 2 and elapsed < 1.4  # the slow attempt was abandoned, not waited out


def test_timeout_every_time_fails_after_max_retries(tmp_path):
    with ChatServer(lambda body: Reply("late", delay_s=1.0)) as server:
        teacher = _teacher(server, tmp_path, timeout_s=0.2, max_retries=2)
        replies = teacher.complete(_requests(1))
        # The client gives up on the third attempt after 0.2 s, possibly before a starved server thread has
        # accepted it: give the server time to count what it was sent.
        deadline = time.monotonic() + 10
        while server.stats.total < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert replies[0].text is None and replies[0].error.startswith("timeout:")
    assert "after 3 attempts" in replies[0].error
    assert server.stats.total == 3
    assert teacher.usage()["failures"] == {"timeout": 1}


def test_dropped_connection_is_retried(tmp_path):
    seen = collections.Counter()

    def handler(body):
        seen[_content(body)] += 1
        return Reply(drop=True) if seen[_content(body)] == 1 else _echo(body)

    with ChatServer(handler) as server:
        replies = _teacher(server, tmp_path).complete(_requests(2))
    assert [reply.text for reply in replies] == ["re: prompt 0", "re: prompt 1"]
    assert server.stats.dropped == 2


def test_endpoint_down_for_good_gives_counted_errors_not_exceptions(tmp_path, caplog):
    server = ChatServer(_echo).start()
    server.stop()  # nothing listens on this port any more
    teacher = _teacher(server, tmp_path, max_retries=2)
    replies = teacher.complete(_requests(4))
    assert all(reply.text is None and reply.error.startswith("connection:") for reply in replies)
    usage = teacher.usage()
    assert usage["failures"] == {"connection": 4} and usage["attempts"] == 12
    assert teacher.cache.path is not None and len(teacher.cache) == 0  # failures are never cached
    assert "4 of 4 requests failed (connection: 4)" in caplog.text


def test_rerun_sends_nothing_twice(tmp_path):
    with ChatServer(_echo) as server:
        first = _teacher(server, tmp_path).complete(_requests(5))
        second_teacher = _teacher(server, tmp_path)
        second = second_teacher.complete(_requests(5))
    assert server.stats.total == 5
    assert [reply.text for reply in second] == [reply.text for reply in first]
    assert all(reply.cached for reply in second) and second_teacher.usage()["cache_hits"] == 5
    assert second_teacher.usage()["requests"] == 0


def test_interrupted_run_resumes_with_only_the_missing_requests(tmp_path):
    broken = {"value": True}

    def handler(body):
        number = int(_content(body).split()[1])
        return Reply("down", status=500) if broken["value"] and number % 2 else _echo(body)

    with ChatServer(handler) as server:
        first = _teacher(server, tmp_path, max_retries=0).complete(_requests(8))
        assert [reply.text is None for reply in first] == [i % 2 == 1 for i in range(8)]
        broken["value"] = False
        server.stats.reset()
        second = _teacher(server, tmp_path, max_retries=0).complete(_requests(8))
    assert sorted(_content(body) for body in server.stats.bodies) == [f"prompt {i}" for i in (1, 3, 5, 7)]
    assert [reply.text for reply in second] == [f"re: prompt {i}" for i in range(8)]
    assert [reply.cached for reply in second] == [i % 2 == 0 for i in range(8)]


def test_each_reply_is_in_the_cache_file_before_the_next_request(tmp_path):
    cache_file = tmp_path / "cache.sqlite"
    rows_seen = []

    def handler(body):
        if cache_file.exists():  # read by a separate connection, as a resumed process would
            with sqlite3.connect(cache_file) as db:
                rows_seen.append(db.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
        return _echo(body)

    with ChatServer(handler) as server:
        _teacher(server, tmp_path, concurrency=1).complete(_requests(4))
    assert rows_seen == [0, 1, 2, 3]


def test_logprobs_pass_through_and_come_back_from_the_cache(tmp_path):
    positions = [{"7": -0.1, "8": -2.5, "3": -4.0}, {".": -0.05}]

    def handler(body):
        assert body["logprobs"] is True and body["top_logprobs"] == 3
        return Reply("7.", top_logprobs=positions)

    with ChatServer(handler) as server:
        fresh = _teacher(server, tmp_path).complete(_requests(1, logprobs=3))
        cached = _teacher(server, tmp_path).complete(_requests(1, logprobs=3))
    assert fresh[0].top_logprobs == positions
    assert cached[0].cached and cached[0].top_logprobs == positions
    assert server.stats.total == 1


def test_requests_without_logprobs_do_not_ask_for_them(tmp_path):
    with ChatServer(_echo) as server:
        replies = _teacher(server, tmp_path).complete(_requests(1))
    assert "logprobs" not in server.stats.bodies[0] and replies[0].top_logprobs is None


def test_concurrency_bound_is_respected_and_order_kept_beyond_the_task_window(tmp_path):
    def slow_echo(body):
        return Reply("re: " + _content(body), delay_s=0.03 * (int(_content(body).split()[1]) % 4))

    with ChatServer(slow_echo) as server:
        replies = _teacher(server, tmp_path, concurrency=3).complete(_requests(40))  # > 4 tasks per slot
    assert server.stats.max_in_flight == 3
    assert [reply.text for reply in replies] == [f"re: prompt {i}" for i in range(40)]


def test_complete_works_inside_a_running_event_loop(tmp_path):
    import asyncio

    async def caller(teacher):
        return teacher.complete(_requests(2))

    with ChatServer(_echo) as server:
        replies = asyncio.run(caller(_teacher(server, tmp_path)))
    assert [reply.text for reply in replies] == ["re: prompt 0", "re: prompt 1"]


def test_calls_from_two_threads_share_one_cache(tmp_path):
    with ChatServer(_echo) as server:
        teacher = _teacher(server, tmp_path)
        threads = [threading.Thread(target=teacher.complete, args=(_requests(4),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(teacher.cache) == 4


CRASH_SCRIPT = """
import sys
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
base_url, cache_path = sys.argv[1], sys.argv[2]
cfg = TeacherConfig(backend="openai", base_url=base_url, model="loop", api_key_env="MIDDO_TEST_UNSET",
                    cache_path=cache_path, concurrency=1, timeout_s=30.0)
make_teacher(cfg).complete([ChatRequest([{"role": "user", "content": f"prompt {i}"}], 0.0, 32, "simplify")
                            for i in range(12)])
"""


def test_a_killed_run_resumes_without_paying_twice(tmp_path):
    import signal
    import subprocess
    import sys

    process: dict = {}

    def handler(body):
        if server.stats.total == 6:  # the sixth request: the client process dies before any reply
            process["child"].send_signal(signal.SIGKILL)
            return Reply("never delivered", delay_s=0.5)
        return _echo(body)

    cache_path = str(tmp_path / "cache.sqlite")
    with ChatServer(handler) as server:
        process["child"] = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, server.base_url, cache_path])
        assert process["child"].wait(timeout=60) == -signal.SIGKILL
        sent_before = [_content(body) for body in server.stats.bodies]  # in arrival order
        server.stats.reset()
        server.handler = _echo
        replies = _teacher(server, tmp_path).complete(_requests(12))
    resent = {_content(body) for body in server.stats.bodies}
    assert len(sent_before) == 6 and len(resent) == 7 == server.stats.total
    assert resent & set(sent_before) == {sent_before[-1]}  # only the request in flight at the kill goes again
    assert [reply.text for reply in replies] == [f"re: prompt {i}" for i in range(12)]
