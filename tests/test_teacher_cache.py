"""SQLite request cache: keys, WAL mode, round trips, only successes stored, repeats within a call."""

from __future__ import annotations

import dataclasses
import sqlite3

from middo.teacher.cache import ReplyCache, cache_key, complete_cached
from middo.teacher.types import ChatReply, ChatRequest, Usage, failed

REQUEST = ChatRequest([{"role": "user", "content": "shorten this"}], 0.0, 64, "simplify")
URL = "http://127.0.0.1:8000/v1"


def test_key_changes_with_everything_that_changes_the_reply():
    base = cache_key(URL, "m", REQUEST)
    variants = [
        cache_key("http://127.0.0.1:9000/v1", "m", REQUEST),
        cache_key(URL, "other-model", REQUEST),
        cache_key(URL, "m", dataclasses.replace(REQUEST, temperature=0.7)),
        cache_key(URL, "m", dataclasses.replace(REQUEST, max_tokens=65)),
        cache_key(URL, "m", dataclasses.replace(REQUEST, logprobs=5)),
        cache_key(URL, "m", dataclasses.replace(REQUEST, messages=[{"role": "user", "content": "shorten that"}])),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_key_ignores_op_and_dict_order():
    reordered = dataclasses.replace(REQUEST, messages=[{"content": "shorten this", "role": "user"}], op="judge")
    assert cache_key(URL, "m", reordered) == cache_key(URL, "m", REQUEST)
    assert len(cache_key(URL, "m", REQUEST)) == 64


def test_round_trip_wal_and_persistence(tmp_path):
    path = tmp_path / "sub" / "teacher.sqlite"
    reply = ChatReply("short", None, 12, 2, cached=False, top_logprobs=[{"a": -0.5}])
    cache = ReplyCache(path)
    cache.put("k1", reply)
    cache.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = ReplyCache(path)
    assert reopened.get("k1") == dataclasses.replace(reply, cached=True)
    assert reopened.get("k2") is None and len(reopened) == 1


def test_failures_are_not_stored_and_no_path_stores_nothing(tmp_path):
    cache = ReplyCache(tmp_path / "c.sqlite")
    cache.put("k", failed("server_error", "HTTP 500"))
    assert cache.get("k") is None and len(cache) == 0
    memoryless = ReplyCache(None)
    memoryless.put("k", ChatReply("x", None, 1, 1, cached=False))
    assert memoryless.get("k") is None


def test_repeats_in_one_call_are_sent_once(tmp_path):
    cache, usage, sent = ReplyCache(tmp_path / "c.sqlite"), Usage(), []

    def send(requests, keys):
        sent.extend(keys)
        replies = [ChatReply(f"r{len(sent)}-{i}", None, 1, 1, cached=False) for i in range(len(requests))]
        for request, key, reply in zip(requests, keys, replies, strict=True):
            cache.put(key, reply)
            usage.record(request, reply)
        return replies

    other = dataclasses.replace(REQUEST, messages=[{"role": "user", "content": "other"}])
    keys = [cache_key(URL, "m", request) for request in (REQUEST, other, REQUEST)]
    replies = complete_cached([REQUEST, other, REQUEST], keys, cache, usage, send)
    assert len(sent) == 2 and replies[0].text == replies[2].text != replies[1].text
    assert [reply.cached for reply in replies] == [False, False, True]
    assert usage.as_dict()["cache_hits"] == 1 and usage.as_dict()["requests"] == 2


def test_get_many_spans_several_query_chunks(tmp_path):
    cache = ReplyCache(tmp_path / "c.sqlite")
    keys = [f"key-{i}" for i in range(1200)]
    for key in keys[::3]:
        cache.put(key, ChatReply(f"text of {key}", None, 1, 1, cached=False))
    found = cache.get_many(keys + ["key-0"])
    assert [reply.text if reply else None for reply in found] == (
        [f"text of {key}" if i % 3 == 0 else None for i, key in enumerate(keys)] + ["text of key-0"]
    )
