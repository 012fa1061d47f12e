"""Persistent teacher request cache: SQLite in WAL mode, one row per successful reply, written as it arrives."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from middo.errors import ConfigError
from middo.teacher.types import ChatReply, ChatRequest, Usage

SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    top_logprobs TEXT
)
"""
COLUMNS = "text, prompt_tokens, completion_tokens, top_logprobs"
LOOKUP_CHUNK = 500  # keys per SELECT ... IN (...), under SQLite's bound-parameter limit


class CacheError(ConfigError):
    """The request cache file cannot be used (damaged, or not a middo cache)."""


def cache_key(endpoint: str, model: str, request: ChatRequest) -> str:
    """sha256 of the canonical JSON of everything that determines the reply (never the API key)."""
    payload = {
        "base_url": endpoint,
        "model": model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "logprobs": request.logprobs,
    }
    if request.response_format is not None:  # absent otherwise, so free-text requests keep their keys
        payload["response_format"] = request.response_format
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ReplyCache:
    """Successful replies by `cache_key`; `path=None` keeps nothing (every lookup misses)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._readable():
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60.0)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process crash
                self._db.execute(SCHEMA)
                self._db.execute(f"SELECT key, {COLUMNS} FROM replies LIMIT 1").fetchall()  # a cheap probe

    @contextmanager
    def _readable(self) -> Iterator[None]:
        """Turn SQLite's error on a damaged or foreign file into a ConfigError that says what to do."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise CacheError(
                f"teacher.cache_path = {str(self.path)!r}: not a usable request cache ({exc}). The file only caches "
                f"teacher replies: delete it (and any {self.path.name}-wal and -shm next to it) and re-run, and the "
                "replies are asked for again; or point teacher.cache_path at another file"
            ) from None

    def get(self, key: str) -> ChatReply | None:
        """The cached reply (marked `cached=True`) or None."""
        if self._db is None:
            return None
        with self._lock, self._readable():
            row = self._db.execute(f"SELECT {COLUMNS} FROM replies WHERE key = ?", (key,)).fetchone()
        return None if row is None else _reply(*row)

    def get_many(self, keys: list[str]) -> list[ChatReply | None]:
        """`get` for each key, in chunked queries."""
        if self._db is None:
            return [None] * len(keys)
        found: dict[str, ChatReply] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start:start + LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._lock, self._readable():
                query = f"SELECT key, {COLUMNS} FROM replies WHERE key IN ({marks})"
                rows = self._db.execute(query, chunk).fetchall()
            found.update((row[0], _reply(*row[1:])) for row in rows)
        return [found.get(key) for key in keys]

    def put(self, key: str, reply: ChatReply) -> None:
        """Store a successful reply now (autocommit), so an interrupted run keeps what it paid for."""
        if self._db is None or not reply.ok:
            return
        logprobs_json: Any = json.dumps(reply.top_logprobs) if reply.top_logprobs is not None else None
        with self._lock, self._readable():
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                (key, reply.text, reply.prompt_tokens, reply.completion_tokens, logprobs_json),
            )

    def put_many(self, items: list[tuple[str, ChatReply]]) -> None:
        """`put` for many replies in one transaction (a batch's download: 10^4 rows without 10^4 commits)."""
        rows = [(key, r.text, r.prompt_tokens, r.completion_tokens,
                 json.dumps(r.top_logprobs) if r.top_logprobs is not None else None) for key, r in items if r.ok]
        if self._db is None or not rows:
            return
        with self._lock, self._readable():
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _reply(text: str, prompt_tokens: int, completion_tokens: int, logprobs_json: str | None) -> ChatReply:
    top_logprobs = json.loads(logprobs_json) if logprobs_json is not None else None
    return ChatReply(text, None, prompt_tokens, completion_tokens, cached=True, top_logprobs=top_logprobs)


def complete_cached(
    requests: list[ChatRequest],
    keys: list[str],
    cache: ReplyCache,
    usage: Usage,
    send: Callable[[list[ChatRequest], list[str]], list[ChatReply]],
) -> list[ChatReply]:
    """Replies in request order: cache hits at once, each distinct missing key sent once through `send` (which
    caches and counts what it sends); a repeat of a request in the same call shares its reply as a cache hit."""
    replies = cache.get_many(keys)
    first_of_key: dict[str, int] = {}
    for index, reply in enumerate(replies):
        if reply is None:
            first_of_key.setdefault(keys[index], index)
    unique = list(first_of_key.values())
    fresh = send([requests[i] for i in unique], [keys[i] for i in unique]) if unique else []
    sent = dict(zip((keys[i] for i in unique), fresh, strict=True))
    usage.add_cache_hits(sum(reply is not None for reply in replies))
    for index, reply in enumerate(replies):
        if reply is None:
            shared = sent[keys[index]]
            repeat = first_of_key[keys[index]] != index
            usage.add_cache_hits(int(repeat and shared.ok))
            replies[index] = dataclasses.replace(shared, cached=True) if repeat and shared.ok else shared
    return [reply for reply in replies if reply is not None]


class CachedTeacher:
    """Plumbing shared by teachers that answer through a `ReplyCache` and count a `Usage`."""

    cache: ReplyCache
    _usage: Any

    def usage(self) -> dict[str, Any]:
        """Requests sent, attempts, cache hits, failures by kind, prompt/completion tokens per op."""
        return self._usage.as_dict()

    def close(self) -> None:
        """Close the cache file."""
        self.cache.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
