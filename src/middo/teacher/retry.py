"""Which teacher failures are retried, and how long to wait: full-jitter exponential backoff and Retry-After."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import openai

RETRIED_STATUSES = {408, 409, 429}
"""4xx statuses worth another try (plus every 5xx); other 4xx mean the request itself is wrong."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: its kind, a short detail, whether to retry, and the server's Retry-After if any."""

    kind: str
    detail: str
    retryable: bool
    retry_after_s: float | None = None


def classify(exc: BaseException) -> Failure:
    """Map an exception from one attempt to a `Failure` (kinds: rate_limit, server_error, client_error,
    timeout, connection, bad_response, api_error); anything else is a bug and is re-raised."""
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return Failure("timeout", "no reply within teacher.timeout_s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Failure("connection", f"{type(cause).__name__}: {cause}".strip(), retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after(exc.response.headers)
        detail = f"HTTP {status}: {_short(exc.message)}"
        if status == 429:
            return Failure("rate_limit", detail, retryable=True, retry_after_s=retry_after)
        if status >= 500:
            return Failure("server_error", detail, retryable=True, retry_after_s=retry_after)
        return Failure("client_error", detail, retryable=status in RETRIED_STATUSES, retry_after_s=retry_after)
    if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | IndexError | TypeError):
        return Failure("bad_response", f"{type(exc).__name__}: {_short(str(exc))}", retryable=False)
    if isinstance(exc, openai.OpenAIError):
        return Failure("api_error", f"{type(exc).__name__}: {_short(str(exc))}", retryable=False)
    raise exc  # a bug, not a teacher failure: let it surface


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date; None if absent or unparseable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _retry_after(headers: Any) -> float | None:
    """`retry-after-ms` (sent by OpenAI, finer) if present, else `Retry-After`."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def backoff_s(attempt: int, base_s: float, max_s: float, retry_after_s: float | None = None,
              rng: random.Random | None = None) -> float:
    """Wait before retry `attempt` (0-based): uniform in [0, min(max_s, base_s * 2**attempt)], but never less
    than the server's Retry-After."""
    ceiling = min(max_s, base_s * (2 ** attempt))
    jittered = (rng or random).uniform(0.0, ceiling)
    return max(jittered, retry_after_s or 0.0)


def within_wait_cap(failure: Failure, max_wait_s: float) -> Failure:
    """`failure` itself, or a failure that is not retried when the server asks to wait longer than `max_wait_s`."""
    if failure.retry_after_s is None or failure.retry_after_s <= max_wait_s:
        return failure
    detail = (f"{failure.detail}; the server asked to wait {failure.retry_after_s:.0f}s before a retry (Retry-After), "
              f"more than teacher.max_retry_after_s = {max_wait_s:g}s, so this request is given up")
    return Failure(failure.kind, detail, retryable=False, retry_after_s=failure.retry_after_s)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
