"""The `openai` backend: any OpenAI-compatible chat endpoint, async with bounded concurrency, retries and a cache."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from collections import Counter
from typing import Any
from urllib.parse import urlparse

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from middo.errors import ConfigError
from middo.log import get_logger
from middo.teacher.cache import CachedTeacher, CacheError, ReplyCache, cache_key, complete_cached
from middo.teacher.config import TeacherConfig
from middo.teacher.limits import Budget, RateLimiter
from middo.teacher.pool import ClientPool, run_coroutine
from middo.teacher.retry import backoff_s, classify, within_wait_cap
from middo.teacher.types import ChatReply, ChatRequest, Usage, failed

log = get_logger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
TASKS_PER_SLOT = 4  # live tasks per concurrency slot: enough to refill slots at once, bounded memory
EMPTY_KEY = "EMPTY"  # what local servers (vLLM, SGLang, the loopback server) accept when they check no key


def is_loopback(base_url: str) -> bool:
    """True when `base_url` points at this machine."""
    return (urlparse(base_url).hostname or "") in LOOPBACK_HOSTS


def resolve_api_key(cfg: TeacherConfig) -> str:
    """The key from the environment variable `cfg.api_key_env`; "EMPTY" for a loopback endpoint without one."""
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if is_loopback(cfg.base_url):
        return EMPTY_KEY
    raise ConfigError(
        f"environment variable {cfg.api_key_env} is not set: export {cfg.api_key_env}=<your API key> for "
        f"{cfg.base_url} (teacher.api_key_env names the variable; the key never goes in params.yaml)"
    )


class OpenAITeacher(CachedTeacher):
    """`Teacher` over an OpenAI-compatible endpoint; failures come back as error replies, never exceptions."""

    def __init__(self, cfg: TeacherConfig, cache: ReplyCache | None = None, seed: int | None = None) -> None:
        self.cfg = cfg
        cfg.endpoint()  # refuses an unset base_url before the key is read
        self._api_key = resolve_api_key(cfg)
        self.cache = cache if cache is not None else ReplyCache(cfg.cache_path or None)
        self._usage = Usage()
        self._rng = random.Random(seed)
        self.budget = Budget(cfg)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAITeacher(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """Replies in request order: cached ones at once, the rest from the endpoint (each cached as it arrives)."""
        keys = [cache_key(self.cfg.base_url, self.cfg.model, request) for request in requests]
        return complete_cached(requests, keys, self.cache, self._usage, self._send_missing)

    def _send_missing(self, requests: list[ChatRequest], keys: list[str]) -> list[ChatReply]:
        """The uncached requests: live, or as one batch in `teacher.mode: batch` (`middo.teacher.batch`)."""
        if self.cfg.mode == "batch":
            from middo.teacher.batch import send_batch

            return send_batch(self, requests, keys)
        return self.send_live(requests, keys)

    def send_live(self, requests: list[ChatRequest], keys: list[str]) -> list[ChatReply]:
        """Send `requests` live now (no cache lookup), each reply cached and counted as it arrives."""
        return run_coroutine(self._send_all(requests, keys))

    def check_budget(self) -> None:
        """BudgetExceeded when a spending cap stopped a request of this teacher."""
        self.budget.check()

    async def _send_all(self, requests: list[ChatRequest], keys: list[str]) -> list[ChatReply]:
        """Send every request, at most `concurrency` in flight; tasks are created as slots free up, so a million
        requests never means a million live tasks."""
        limit = asyncio.Semaphore(self.cfg.concurrency)
        live = asyncio.Semaphore(TASKS_PER_SLOT * self.cfg.concurrency)
        replies: list[ChatReply | None] = [None] * len(requests)
        pool = ClientPool(self.cfg, self._api_key)
        rate = RateLimiter(self.cfg)
        async with pool:
            with tqdm(total=len(requests), desc=f"teacher {self.cfg.model}", unit="req",
                      disable=len(requests) < 16) as progress:

                async def one(index: int) -> None:
                    try:
                        reply = await self._send_within_budget(pool, limit, rate, requests[index])
                        self.cache.put(keys[index], reply)
                        self._usage.record(requests[index], reply)
                        replies[index] = reply
                        progress.update(1)
                    finally:
                        live.release()

                try:
                    async with asyncio.TaskGroup() as group:
                        for index in range(len(requests)):
                            await live.acquire()
                            group.create_task(one(index))
                except* CacheError as errors:  # the cache file broke mid-run: its own message, not a group
                    raise errors.exceptions[0] from None
        done = [reply for reply in replies if reply is not None]
        errors = Counter(reply.error_kind for reply in done if reply.error is not None)
        if errors:
            log.warning("teacher %s: %d of %d requests failed (%s)", self.cfg.model, sum(errors.values()), len(done),
                        ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items())))
        return done

    async def _send_within_budget(self, pool: ClientPool, limit: asyncio.Semaphore, rate: RateLimiter,
                                  request: ChatRequest) -> ChatReply:
        """`_send` under the spending caps: the real usage of a reply settles its reservation."""
        reply = await self._send(pool, limit, rate, request)
        if reply.error_kind != "budget":  # a request the caps stopped reserved nothing
            self.budget.settle(request, reply.prompt_tokens, reply.completion_tokens)
        return reply

    async def _send(self, pool: ClientPool, limit: asyncio.Semaphore, rate: RateLimiter,
                    request: ChatRequest) -> ChatReply:
        """One request with retries; the backoff wait happens outside the concurrency slot; the caps reserve and the
        rate limits wait inside it (in slot order, just before the request goes out, so no burst follows a wait)."""
        for attempt in range(self.cfg.max_retries + 1):
            async with limit:
                if attempt == 0 and not self.budget.reserve(request):
                    return failed("budget", f"not sent: {self.budget.stopped} reached")
                if rate.active:
                    await rate.wait(request)
                self._usage.add_attempt()
                client = pool.acquire()
                try:
                    async with asyncio.timeout(self.cfg.timeout_s):
                        # the generic post skips the client's per-request params transform (an identity for plain
                        # dict messages that costs more CPU than the rest of the request)
                        response = await client.post("/chat/completions", body=self._arguments(request),
                                                     cast_to=ChatCompletion)
                    return parse_response(response)
                except (TimeoutError, openai.OpenAIError, ValueError, KeyError, IndexError, TypeError) as exc:
                    failure = within_wait_cap(classify(exc), self.cfg.max_retry_after_s)
                finally:
                    pool.release(client)
            if not failure.retryable or attempt == self.cfg.max_retries:
                break
            wait = backoff_s(attempt, self.cfg.backoff_base_s, self.cfg.backoff_max_s, failure.retry_after_s,
                             self._rng)
            level = logging.INFO if wait > self.cfg.backoff_max_s else logging.DEBUG  # a long Retry-After is news
            log.log(level, "teacher %s (%s); retry %d in %.2fs", failure.kind, self._scrub(failure.detail),
                    attempt + 1, wait)
            await asyncio.sleep(wait)
        tries = f" after {attempt + 1} attempts" if attempt else ""
        return failed(failure.kind, self._scrub(failure.detail) + tries)

    def _scrub(self, text: str) -> str:
        """`text` without the API key (a server may echo it in an error message)."""
        return text if self._api_key == EMPTY_KEY else text.replace(self._api_key, "***")

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        return request_body(self.cfg, request)


def request_body(cfg: TeacherConfig, request: ChatRequest) -> dict[str, Any]:
    """The chat-completions body of `request` (live, and a batch line's `body`)."""
    arguments: dict[str, Any] = {
        "model": cfg.model,
        "messages": request.messages,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    if request.logprobs is not None:
        arguments.update(logprobs=True, top_logprobs=request.logprobs)
    if request.response_format is not None:
        arguments["response_format"] = request.response_format
    return arguments


def check_text(text: str) -> None:
    """A ValueError (a `bad_response`) when `text` is not valid Unicode: a lone surrogate, half of a character."""
    if (bad := _SURROGATE.search(text)) is not None:
        raise ValueError(f"reply text holds a lone surrogate (\\u{ord(bad.group()):04x} at character {bad.start()}), "
                         "half of a character; the endpoint sent malformed text")


def parse_response(response: Any) -> ChatReply:
    """A `ChatReply` from a chat.completion; no choice or no content raises ValueError (a `bad_response`)."""
    if not response.choices:
        raise ValueError("reply has no choices")
    choice = response.choices[0]
    text = choice.message.content
    if text is None:
        raise ValueError(f"reply has no content (finish_reason={choice.finish_reason})")
    check_text(text)
    usage = response.usage
    top_logprobs = None
    if choice.logprobs is not None and choice.logprobs.content:
        top_logprobs = [
            {candidate.token: candidate.logprob for candidate in position.top_logprobs}
            for position in choice.logprobs.content
        ]
    return ChatReply(
        text=text,
        error=None,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cached=False,
        top_logprobs=top_logprobs,
    )
