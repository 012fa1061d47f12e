"""Params section `teacher`: which chat model rewrites samples (and judges in `judge.mode: openai`), and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from middo.config import check

BUILTIN_BACKENDS = ("openai", "local")


@dataclass(frozen=True)
class TeacherConfig:
    """Section `teacher`: an OpenAI-compatible endpoint (`openai`), a local transformers model (`local`), or a backend
    that a plugin registers under the entry-point group `middo.teachers`. The API key is read from the environment
    variable named by `api_key_env`, never from this file."""

    backend: str = "openai"
    """`openai` (any OpenAI-compatible endpoint: vLLM, SGLang, a paid API), `local` (transformers model), or the name
    of a plugin backend (entry-point group `middo.teachers`)."""
    base_url: str = "https://api.openai.com/v1"
    """`openai` backend: the endpoint base URL, e.g. http://localhost:8000/v1 for vLLM or SGLang."""
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
    """Cap of one backoff wait; a longer Retry-After from the server is still honoured."""
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
    options: dict[str, Any] = field(default_factory=dict)
    """Settings of a plugin backend, handed to it as they are (the built-in backends take none)."""

    def __post_init__(self) -> None:
        check(bool(self.backend), "teacher.backend is empty; use `openai`, `local` or a plugin backend's name")
        check(bool(self.model), "teacher.model is empty; name the model at the endpoint (or a local model path)")
        if self.backend == "openai":
            check(self.base_url.startswith(("http://", "https://")),
                  f"teacher.base_url = {self.base_url!r}; use an http(s) URL such as http://localhost:8000/v1")
        check(bool(self.api_key_env) and not self.api_key_env.startswith(("sk-", "Bearer")),
              "teacher.api_key_env must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key")
        check(self.concurrency >= 1, f"teacher.concurrency = {self.concurrency}; use 1 or more")
        check(self.timeout_s > 0, f"teacher.timeout_s = {self.timeout_s}; use a positive number of seconds")
        check(self.max_retries >= 0, f"teacher.max_retries = {self.max_retries}; use 0 or more")
        check(self.backoff_base_s >= 0, f"teacher.backoff_base_s = {self.backoff_base_s}; use 0 or more seconds")
        check(self.backoff_max_s >= self.backoff_base_s,
              f"teacher.backoff_max_s = {self.backoff_max_s}; use at least teacher.backoff_base_s")
        check(self.temperature >= 0, f"teacher.temperature = {self.temperature}; use 0 or more")
        check(self.max_tokens >= 1, f"teacher.max_tokens = {self.max_tokens}; use 1 or more")
        check(isinstance(self.options, dict), f"teacher.options = {self.options!r}; use a mapping of names to values")
        check(self.backend not in BUILTIN_BACKENDS or not self.options,
              f"teacher.options = {self.options!r}: built-in backend {self.backend!r} takes no options; remove them")
        check(self.local_batch_size >= 1, f"teacher.local_batch_size = {self.local_batch_size}; use 1 or more")
        check(self.local_token_budget >= 1, f"teacher.local_token_budget = {self.local_token_budget}; use 1 or more")
