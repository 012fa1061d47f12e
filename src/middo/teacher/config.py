"""Params section `teacher`: which chat model rewrites samples (and judges in `judge.mode: openai`), and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from middo.config import check

BUILTIN_BACKENDS = ("openai", "local")
PRICE_KEYS = ("input", "output")


@dataclass(frozen=True)
class TeacherConfig:
    """Section `teacher`: an OpenAI-compatible endpoint (`openai`), a local transformers model (`local`), or a backend
    that a plugin registers under the entry-point group `middo.teachers`. The API key is read from the environment
    variable named by `api_key_env`, never from this file."""

    backend: str = "openai"
    """`openai` (any OpenAI-compatible endpoint: vLLM, SGLang, a paid API), `local` (transformers model), or the name
    of a plugin backend (entry-point group `middo.teachers`)."""
    base_url: str = ""
    """`openai` backend: the endpoint base URL, always written out (http://localhost:8000/v1 for vLLM or SGLang,
    https://api.openai.com/v1 for OpenAI): there is no default endpoint that the key could go to by mistake."""
    model: str = "gpt-4o-mini"
    """Model name at the endpoint (`openai`); local dir, hub id or .gguf file (`local`)."""
    api_key_env: str = "OPENAI_API_KEY"
    """NAME of the environment variable holding the API key (not the key); may be unset for a loopback URL."""
    concurrency: int = 8
    """Requests in flight at once (`openai`)."""
    timeout_s: float = 60.0
    """Seconds before one request attempt is abandoned and retried."""
    max_retries: int = 4
    """Retries after the first attempt for 429, 408/409, 5xx, timeouts and connection errors."""
    backoff_base_s: float = 0.5
    """Backoff before retry n is uniform in [0, min(backoff_max_s, backoff_base_s * 2**n)] (full jitter)."""
    backoff_max_s: float = 30.0
    """Cap of one backoff wait; a longer Retry-After from the server is honoured up to `max_retry_after_s`."""
    max_retry_after_s: float = 120.0
    """Longest Retry-After (or retry-after-ms) the server may ask for: a request told to wait longer fails at once
    (a counted `rate_limit` or `server_error`) instead of stalling the stage."""
    temperature: float = 0.0
    """Sampling temperature of teacher calls (0 = greedy, reproducible)."""
    max_tokens: int = 512
    """Longest teacher reply in tokens."""
    cache_path: str = ".middo-cache/teacher.sqlite"
    """SQLite request cache (git-ignored, outside DVC outputs): a re-run never pays twice; empty string disables."""
    local_batch_size: int = 8
    """`local` backend: at most this many prompts generated together in one left-padded batch."""
    local_token_budget: int = 8192
    """`local` backend: a batch's rows x (its longest prompt + max_tokens) stays within this many tokens (the KV cache
    a batch can grow to); a longer request gets a batch of its own."""
    trust_remote_code: bool = False
    """`local` backend: run the Python code a model repo ships (transformers' `trust_remote_code`); off, such a
    model is refused with a message, never a terminal prompt. Turn on only for a repo whose code you trust."""
    options: dict[str, Any] = field(default_factory=dict)
    """Settings of a plugin backend, handed to it as they are (the built-in backends take none)."""
    mode: Literal["live", "batch"] = "live"
    """`openai` backend: `live` sends each request as it goes; `batch` sends a phase's uncached requests as one OpenAI
    Batch (files + batches endpoints; half price at OpenAI, hours not seconds) and waits for it. The replies land in
    the same request cache either way, so switching modes re-runs nothing."""
    batch_poll_s: float = 30.0
    """`batch` mode: seconds between two looks at a pending batch."""
    batch_retry: Literal["live", "batch"] = "live"
    """`batch` mode: how requests that failed or expired inside a batch are sent again (`live`, or one new batch)."""
    max_requests: int = 0
    """Cap: most requests one stage may send to the endpoint (cache hits are free); 0 = no cap. Reaching it stops
    the stage before the request that would cross it, with a non-zero exit."""
    max_total_tokens: int = 0
    """Cap: most prompt + completion tokens one stage may spend (a request counts as its estimated prompt plus its
    max_tokens until its real usage is known); 0 = no cap."""
    prices: dict[str, float] = field(default_factory=dict)
    """Price per million tokens, {input: ..., output: ...} (e.g. {input: 0.15, output: 0.6}); needed by `max_cost`
    and `middo estimate`'s cost."""
    max_cost: float = 0.0
    """Cap: most money (in the unit of `prices`) one stage may spend; 0 = no cap."""
    rpm: int = 0
    """Client-side limit: requests per minute across all concurrent requests (a token bucket); 0 = none."""
    tpm: int = 0
    """Client-side limit: tokens per minute (estimated prompt + max_tokens per request); 0 = none."""

    def __post_init__(self) -> None:
        check(bool(self.backend), "teacher.backend is empty; use `openai`, `local` or a plugin backend's name")
        check(bool(self.model), "teacher.model is empty; name the model at the endpoint (or a local model path)")
        if self.backend == "openai" and self.base_url:
            check(self.base_url.startswith(("http://", "https://")),
                  f"teacher.base_url = {self.base_url!r}; use an http(s) URL such as http://localhost:8000/v1")
        check(bool(self.api_key_env) and not self.api_key_env.startswith(("sk-", "Bearer")),
              "teacher.api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key")
        check(self.concurrency >= 1, f"teacher.concurrency = {self.concurrency}; use 1 or more")
        check(self.timeout_s > 0, f"teacher.timeout_s = {self.timeout_s}; use a positive number of seconds")
        check(self.max_retries >= 0, f"teacher.max_retries = {self.max_retries}; use 0 or more")
        check(self.backoff_base_s >= 0, f"teacher.backoff_base_s = {self.backoff_base_s}; use 0 or more seconds")
        check(self.max_retry_after_s >= 0, f"teacher.max_retry_after_s = {self.max_retry_after_s}; use 0 or more "
              "seconds")
        check(self.backoff_max_s >= self.backoff_base_s,
              f"teacher.backoff_max_s = {self.backoff_max_s}; use at least teacher.backoff_base_s")
        check(self.temperature >= 0, f"teacher.temperature = {self.temperature}; use 0 or more")
        check(self.max_tokens >= 1, f"teacher.max_tokens = {self.max_tokens}; use 1 or more")
        check(isinstance(self.options, dict), f"teacher.options = {self.options!r}; use a mapping of names to values")
        check(self.backend == "local" or not self.trust_remote_code,
              f"teacher.trust_remote_code is for the `local` backend (teacher.backend is {self.backend!r}); remove it")
        check(self.backend not in BUILTIN_BACKENDS or not self.options,
              f"teacher.options = {self.options!r}: built-in backend {self.backend!r} takes no options; remove them")
        check(self.local_batch_size >= 1, f"teacher.local_batch_size = {self.local_batch_size}; use 1 or more")
        self._check_volume()
        check(self.local_token_budget >= 1, f"teacher.local_token_budget = {self.local_token_budget}; use 1 or more")

    def _check_volume(self) -> None:
        """Checks of the batch, cap and rate-limit settings."""
        check(self.mode in ("live", "batch"), f"teacher.mode = {self.mode!r}; use `live` or `batch`")
        check(self.batch_retry in ("live", "batch"), f"teacher.batch_retry = {self.batch_retry!r}; use `live` or "
              "`batch`")
        check(self.mode == "live" or bool(self.cache_path), "teacher.mode: batch needs teacher.cache_path (the "
              "batch's replies land in the request cache, and its pending batch id next to it)")
        check(self.batch_poll_s > 0, f"teacher.batch_poll_s = {self.batch_poll_s}; use a positive number of seconds")
        for name in ("max_requests", "max_total_tokens", "rpm", "tpm"):
            check(getattr(self, name) >= 0, f"teacher.{name} = {getattr(self, name)}; use 0 (no limit) or more")
        check(self.max_cost >= 0, f"teacher.max_cost = {self.max_cost}; use 0 (no cap) or more")
        unknown = sorted(set(self.prices) - set(PRICE_KEYS))
        check(not unknown, f"teacher.prices has unknown keys {unknown}; use {{input: <per 1M>, output: <per 1M>}}")
        check(all(isinstance(v, int | float) and v >= 0 for v in self.prices.values()),
              f"teacher.prices = {self.prices!r}; use non-negative prices per million tokens")
        check(not self.max_cost or set(self.prices) == set(PRICE_KEYS),
              f"teacher.max_cost = {self.max_cost} needs teacher.prices with both `input` and `output` per million "
              "tokens (e.g. {input: 0.15, output: 0.6})")

    def endpoint(self) -> str:
        """`base_url` of the `openai` backend; a ConfigError when it is not set (the key would go nowhere chosen)."""
        check(bool(self.base_url),
              f"teacher.base_url is not set: name the endpoint that gets the key in ${self.api_key_env}, e.g. "
              "http://localhost:8000/v1 for vLLM or SGLang, or https://api.openai.com/v1 for OpenAI itself")
        return self.base_url
