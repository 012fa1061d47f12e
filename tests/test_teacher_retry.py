"""Retry policy: which failures are retried, Retry-After parsing, full-jitter backoff bounds."""

from __future__ import annotations

import email.utils
import random

import httpx
import openai
import pytest

from middo.teacher.retry import backoff_s, classify, parse_retry_after

NOW = 1_800_000_000.0


def _status_error(status: int, headers: dict | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request, json={"error": {"message": "m"}})
    client = openai.OpenAI(base_url="http://127.0.0.1:1/v1", api_key="EMPTY", max_retries=0)
    return client._make_status_error_from_response(response)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    date = email.utils.formatdate(NOW + 7, usegmt=True)
    assert parse_retry_after(date, now=NOW) == pytest.approx(7.0)
    assert parse_retry_after(email.utils.formatdate(NOW - 60, usegmt=True), now=NOW) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("") is None


@pytest.mark.parametrize(("status", "kind", "retryable"), [
    (429, "rate_limit", True), (500, "server_error", True), (503, "server_error", True),
    (408, "client_error", True), (409, "client_error", True),
    (400, "client_error", False), (401, "client_error", False), (404, "client_error", False),
])
def test_status_classification(status, kind, retryable):
    failure = classify(_status_error(status))
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert failure.detail.startswith(f"HTTP {status}")


def test_retry_after_header_is_carried():
    assert classify(_status_error(429, {"Retry-After": "2"})).retry_after_s == 2.0
    assert classify(_status_error(429)).retry_after_s is None
    assert classify(_status_error(429, {"retry-after-ms": "250", "Retry-After": "1"})).retry_after_s == 0.25
    assert classify(_status_error(503, {"Retry-After": "4"})).retry_after_s == 4.0


def test_timeouts_and_connection_errors_are_retried():
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    assert classify(TimeoutError()).kind == "timeout"
    assert classify(openai.APITimeoutError(request=request)).kind == "timeout"
    connection = classify(openai.APIConnectionError(request=request))
    assert connection.kind == "connection" and connection.retryable


def test_bad_response_is_not_retried_and_bugs_propagate():
    assert classify(ValueError("reply has no choices")).retryable is False
    assert classify(openai.OpenAIError("odd")).kind == "api_error"
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError())


def test_full_jitter_stays_within_the_exponential_cap():
    rng = random.Random(0)
    for attempt in range(8):
        waits = [backoff_s(attempt, 0.5, 4.0, rng=rng) for _ in range(300)]
        ceiling = min(4.0, 0.5 * 2 ** attempt)
        assert min(waits) >= 0.0 and max(waits) <= ceiling
        assert max(waits) > 0.8 * ceiling and min(waits) < 0.2 * ceiling  # spread over the whole range


def test_retry_after_is_a_floor_even_beyond_the_cap():
    rng = random.Random(0)
    assert all(backoff_s(0, 0.5, 4.0, retry_after_s=10.0, rng=rng) == 10.0 for _ in range(20))
