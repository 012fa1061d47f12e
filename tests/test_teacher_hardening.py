"""Teacher faults that must stay one counted failure or one clear message: malformed reply text, a Retry-After
beyond the cap, a damaged cache file, an endpoint left unset."""

from __future__ import annotations

import time

import pytest

from middo.errors import ConfigError
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.cache import ReplyCache
from middo.teacher.server import ChatServer, Reply

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}


def config(tmp_path, url: str, **overrides) -> TeacherConfig:
    values = {"backend": "openai", "base_url": url, "model": "loop", "api_key_env": "MIDDO_TEST_UNSET",
              "cache_path": str(tmp_path / "cache.sqlite"), **FAST, **overrides}
    return TeacherConfig(**values)


def requests(n: int) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"prompt {i}"}], 0.0, 32, "improve") for i in range(n)]


def half_emoji_for_prompt_1(body: dict) -> Reply:
    content = body["messages"][-1]["content"]
    return Reply("cut \ud83d here" if content == "prompt 1" else f"re: {content}")  # sent as the escape \ud83d


def test_a_reply_with_a_lone_surrogate_is_one_counted_failure(tmp_path):
    with ChatServer(half_emoji_for_prompt_1) as server, make_teacher(config(tmp_path, server.base_url)) as teacher:
        replies = teacher.complete(requests(4))
        assert [reply.ok for reply in replies] == [True, False, True, True]
        assert replies[1].error_kind == "bad_response" and "lone surrogate" in replies[1].error
        assert teacher.usage()["failures"] == {"bad_response": 1}
        server.stats.reset()
        teacher.complete(requests(4))
        assert server.stats.total == 1  # the three good replies were cached, the bad one is asked again
    assert len(ReplyCache(tmp_path / "cache.sqlite")) == 3


def test_a_retry_after_beyond_the_cap_fails_that_request_at_once(tmp_path):
    def handler(body: dict) -> Reply:
        if body["messages"][-1]["content"] == "prompt 0":
            return Reply("slow down", status=429, headers={"Retry-After": "600"})
        return Reply("ok")

    with ChatServer(handler) as server:
        started = time.monotonic()
        with make_teacher(config(tmp_path, server.base_url, max_retry_after_s=5.0)) as teacher:
            replies = teacher.complete(requests(2))
        assert time.monotonic() - started < 5
        assert server.stats.by_status[429] == 1  # not retried
    assert replies[0].error_kind == "rate_limit" and "teacher.max_retry_after_s = 5s" in replies[0].error
    assert replies[1].ok


def test_a_retry_after_within_the_cap_is_still_honoured(tmp_path):
    seen = []

    def handler(body: dict) -> Reply:
        seen.append(time.monotonic())
        return Reply("busy", status=503, headers={"Retry-After": "1"}) if len(seen) == 1 else Reply("ok")

    with ChatServer(handler) as server, make_teacher(config(tmp_path, server.base_url, max_retry_after_s=1.0)) as t:
        assert t.complete(requests(1))[0].ok
    assert seen[1] - seen[0] >= 1.0


@pytest.mark.parametrize("damage", [b"this is not a database at all" * 200, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_cache_file_is_named_as_only_a_cache(tmp_path, damage):
    (tmp_path / "cache.sqlite").write_bytes(damage)
    with pytest.raises(ConfigError) as info:
        make_teacher(config(tmp_path, "http://127.0.0.1:9/v1"))
    message = str(info.value)
    assert "teacher.cache_path" in message and "delete it" in message and "cache.sqlite" in message


def test_the_local_teacher_checks_its_cache_before_loading_a_model(tmp_path, monkeypatch):
    from middo.model import load

    (tmp_path / "cache.sqlite").write_bytes(b"garbage" * 1000)
    monkeypatch.setattr(load, "load_model", lambda *a, **k: pytest.fail("the model was loaded first"))
    with pytest.raises(ConfigError, match="teacher.cache_path"):
        make_teacher(TeacherConfig(backend="local", model="some/model", cache_path=str(tmp_path / "cache.sqlite")))


def test_an_unset_base_url_is_refused_before_any_key_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_KEY", "sk-secret-for-my-own-server")
    cfg = TeacherConfig(api_key_env="VLLM_KEY", cache_path="")
    with pytest.raises(ConfigError) as info:
        make_teacher(cfg)
    assert "teacher.base_url is not set" in str(info.value) and "sk-secret" not in str(info.value)
    assert "$VLLM_KEY" in str(info.value)
    assert TeacherConfig(backend="local", model="m").base_url == ""  # other backends need no URL
