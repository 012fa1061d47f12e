"""The teacher interface: requests, replies, the `Teacher` protocol and its usage counters."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to ask for."""

    messages: list[dict]
    """OpenAI chat messages: [{"role": ..., "content": ...}, ...]."""
    temperature: float
    max_tokens: int
    op: str
    """What the call is for (e.g. `simplify`, `judge`); labels token accounting."""
    logprobs: int | None = None
    """Ask for the top-k candidate tokens with logprobs at each generated position (None: do not ask)."""
    response_format: dict | None = None
    """OpenAI `response_format` (e.g. `{"type": "json_schema", "json_schema": {...}}`) to constrain the reply;
    None asks for free text. The `local` backend prefills the reply's opening for a one-string-field schema."""


@dataclass(frozen=True)
class ChatReply:
    """The answer to one request: `text` on success, else `error` as `<kind>: <detail>`."""

    text: str | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    top_logprobs: list[dict[str, float]] | None = None
    """When asked for and returned: per generated position (list index), candidate token -> logprob."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @property
    def error_kind(self) -> str | None:
        """`rate_limit`, `server_error`, `timeout`, `connection`, `client_error`, `bad_response`, `api_error`,
        `local_error`."""
        return None if self.error is None else self.error.split(":", 1)[0]


def failed(kind: str, detail: str) -> ChatReply:
    """A failed reply with a `<kind>: <detail>` error."""
    return ChatReply(text=None, error=f"{kind}: {detail}", prompt_tokens=0, completion_tokens=0, cached=False)


class Teacher(Protocol):
    """A chat model: `complete` answers every request in order and never raises for one request's failure.

    A teacher holds resources (connections, a request cache, a server or a model): the stage that makes it closes
    it, best with `with make_teacher(cfg) as teacher:`.
    """

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]: ...

    def usage(self) -> dict: ...

    def close(self) -> None: ...

    def __enter__(self) -> Teacher: ...

    def __exit__(self, *exc_info: object) -> None: ...


class Usage:
    """Counters behind `Teacher.usage()`: requests sent, attempts, cache hits, failures by kind, tokens per op.

    Thread-safe: one teacher may be called from several threads (each `complete` runs its own event loop).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.attempts = 0
        self.cache_hits = 0
        self.failures: Counter[str] = Counter()
        self.tokens: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def record(self, request: ChatRequest, reply: ChatReply) -> None:
        """Count one reply that was sent to the backend (not from the cache)."""
        with self._lock:
            self.requests += reply.error_kind != "budget"  # a request a spending cap stopped was never sent
            if reply.error is not None:
                self.failures[reply.error_kind or "unknown"] += 1
            self.tokens[request.op]["prompt_tokens"] += reply.prompt_tokens
            self.tokens[request.op]["completion_tokens"] += reply.completion_tokens

    def add_attempt(self) -> None:
        """Count one attempt (the first try or a retry) sent to the backend."""
        with self._lock:
            self.attempts += 1

    def add_cache_hits(self, count: int) -> None:
        with self._lock:
            self.cache_hits += count

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for metrics JSON; tokens count only replies paid for (cache hits cost nothing)."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "retries": max(0, self.attempts - self.requests),
            "cache_hits": self.cache_hits,
            "failures": dict(sorted(self.failures.items())),
            "failed": sum(self.failures.values()),
            "prompt_tokens": sum(counts["prompt_tokens"] for counts in self.tokens.values()),
            "completion_tokens": sum(counts["completion_tokens"] for counts in self.tokens.values()),
            "tokens": {op: dict(counts) for op, counts in sorted(self.tokens.items())},
        }
