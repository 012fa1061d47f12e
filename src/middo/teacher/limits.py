"""Spending caps and client-side rate limits of the `openai` backend, and the token estimate both rely on.

A request's tokens are not known before its reply, so both count a request as its *estimated* prompt tokens plus
its `max_tokens` (the most it can cost) until the reply's real usage replaces the estimate.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from middo.errors import MiddoError
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatRequest

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text under BPE tokenizers (no tokenizer needed)
MESSAGE_OVERHEAD = 4  # tokens a chat template adds per message (role and separators)
TOKEN_ESTIMATE = "tokenizer-free estimate: characters / 4 + 4 per message"


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Prompt tokens of `request` by the tokenizer-free rule `TOKEN_ESTIMATE`."""
    chars = sum(len(_text(m.get("content"))) for m in request.messages)
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD * len(request.messages)


def _text(content: object) -> str:
    """A message's content as text (a list of content parts as its JSON)."""
    return content if isinstance(content, str) else "" if content is None else json.dumps(content)


def cost(cfg: TeacherConfig, prompt_tokens: int, completion_tokens: int) -> float:
    """Money for these tokens at `teacher.prices` (per million); 0 without prices."""
    return (prompt_tokens * cfg.prices.get("input", 0.0) + completion_tokens * cfg.prices.get("output", 0.0)) / 1e6


class BudgetExceeded(MiddoError):
    """A spending cap stopped the stage before a request that would have crossed it."""


@dataclass
class Spent:
    """Requests, tokens and money a stage has committed (sent or in flight)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Budget:
    """The caps `teacher.max_requests`, `max_total_tokens` and `max_cost` of one stage (one teacher object)."""

    def __init__(self, cfg: TeacherConfig) -> None:
        self.cfg = cfg
        self.spent = Spent()
        self.stopped: str | None = None
        """The cap that stopped a request (the param to raise), once one has."""
        self._lock = threading.Lock()

    @property
    def capped(self) -> bool:
        """Whether any cap is set (without one, reserving and settling are skipped)."""
        return bool(self.cfg.max_requests or self.cfg.max_total_tokens or self.cfg.max_cost)

    def reserve(self, request: ChatRequest) -> bool:
        """Commit the worst case of `request` if no cap would be crossed; False (and `stopped` set) if one would."""
        if not self.capped:
            return True
        prompt = estimate_prompt_tokens(request)
        with self._lock:
            if self.stopped is not None:
                return False
            after = Spent(self.spent.requests + 1, self.spent.prompt_tokens + prompt,
                          self.spent.completion_tokens + request.max_tokens)
            crossed = self._crossed(after)
            if crossed is not None:
                self.stopped = crossed
                return False
            self.spent = after
            return True

    def settle(self, request: ChatRequest, prompt_tokens: int, completion_tokens: int) -> None:
        """Replace a reserved worst case by what the reply really used."""
        if not self.capped:
            return
        with self._lock:
            self.spent.prompt_tokens += prompt_tokens - estimate_prompt_tokens(request)
            self.spent.completion_tokens += completion_tokens - request.max_tokens

    def _crossed(self, after: Spent) -> str | None:
        cfg = self.cfg
        if cfg.max_requests and after.requests > cfg.max_requests:
            return "teacher.max_requests"
        if cfg.max_total_tokens and after.prompt_tokens + after.completion_tokens > cfg.max_total_tokens:
            return "teacher.max_total_tokens"
        if cfg.max_cost and cost(cfg, after.prompt_tokens, after.completion_tokens) > cfg.max_cost:
            return "teacher.max_cost"
        return None

    def summary(self) -> str:
        """What was spent, in words."""
        s = self.spent
        money = f", cost {cost(self.cfg, s.prompt_tokens, s.completion_tokens):.4f}" if self.cfg.prices else ""
        return f"{s.requests} requests, {s.prompt_tokens + s.completion_tokens} tokens{money}"

    def check(self) -> None:
        """BudgetExceeded naming what was spent and which param to raise, when a cap stopped a request."""
        if self.stopped is not None:
            limit = getattr(self.cfg, self.stopped.split(".", 1)[1])
            raise BudgetExceeded(
                f"{self.stopped} = {limit} reached: this stage spent {self.summary()} and stopped before the next "
                f"request; the requests it did not send kept their parents. Raise {self.stopped} (or set it to 0) "
                "and re-run: every reply already received is cached and costs nothing again")


class TokenBucket:
    """`rate` units per second, at most `burst` saved up; `take(n)` waits until n units are there."""

    def __init__(self, per_minute: int, burst: float | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else max(1.0, self.rate)
        self.level = self.burst
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        """Wait for `amount` units (a request larger than the burst waits until the bucket is full)."""
        amount = min(amount, self.burst)
        async with self._lock:  # first come, first served: waiters queue on the lock
            while True:
                now = time.monotonic()
                self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
                self.updated = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)


class RateLimiter:
    """`teacher.rpm` and `teacher.tpm` as two token buckets shared by every request of one `complete` call."""

    def __init__(self, cfg: TeacherConfig) -> None:
        self.requests = TokenBucket(cfg.rpm, burst=1.0) if cfg.rpm else None  # no burst: evenly spaced requests
        self.tokens = TokenBucket(cfg.tpm) if cfg.tpm else None
        self.active = self.requests is not None or self.tokens is not None

    async def wait(self, request: ChatRequest) -> None:
        """Wait until `request` fits both limits."""
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(estimate_prompt_tokens(request) + request.max_tokens)


@contextmanager
def spending_checked(teacher: object) -> Iterator[None]:
    """Around a stage's work with `teacher`: when a spending cap stopped one of its requests, end with
    BudgetExceeded (naming what was spent and the param to raise), also in place of an error the stop caused
    (e.g. refine's failure rate). Teachers without caps pass through."""
    check = getattr(teacher, "check_budget", None)
    try:
        yield
    except MiddoError as exc:
        if check is not None:
            try:
                check()
            except BudgetExceeded as stopped:
                raise stopped from exc
        raise
    if check is not None:
        check()
