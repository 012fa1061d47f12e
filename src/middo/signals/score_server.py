"""The HTTP side of `score.backend: server`: one OpenAI-compatible server, the model it serves, and requests sent
with bounded concurrency (the openai client retries connection errors, 429 and 5xx with backoff)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import openai
from tqdm import tqdm
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from middo.errors import ConfigError, MiddoError
from middo.model.load import split_gguf
from middo.signals.config import ScoreConfig

EMPTY_KEY = "EMPTY"  # what a server started without --api-key accepts
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
T = TypeVar("T")
R = TypeVar("R")


class ServerError(MiddoError):
    """A scoring server failed a request (after retries) or answered in a shape this stage cannot use."""


class ScoreServer:
    """An OpenAI-compatible server named by the setting `setting` (e.g. `score.server_url`) at `url`."""

    def __init__(self, url: str, setting: str, cfg: ScoreConfig) -> None:
        self.url, self.setting, self.cfg = url, setting, cfg
        self.client = openai.OpenAI(base_url=url, api_key=_api_key(cfg, url), timeout=cfg.timeout_s,
                                    max_retries=cfg.max_retries)
        self.model = ""

    def __repr__(self) -> str:  # never show the key
        return f"ScoreServer({self.setting}={self.url!r}, model={self.model!r})"

    def bind(self, model_path: str | Path) -> str:
        """Check the server serves `model_path` (same directory, or same name) and remember its model id."""
        served = self.call(lambda: self.client.models.list().data)
        names = [(card.id, (card.model_extra or {}).get("root") or card.id) for card in served]
        match = [name for name, root in names if _same_model(root, model_path) or _same_model(name, model_path)]
        if not match:
            raise ConfigError(
                f"{self.setting} = {self.url} serves {[root for _, root in names]}, not {str(model_path)!r}: start "
                f"the server on this stage's model (`vllm serve {model_path}`, see README) or point {self.setting} "
                "at the server that has it")
        self.model = match[0]
        return self.model

    def call(self, request: Callable[[], T]) -> T:
        """Run one request; a failure after the client's retries becomes a ServerError naming the setting."""
        try:
            return request()
        except openai.OpenAIError as exc:
            raise ServerError(f"{self.setting} = {self.url}: request failed ({type(exc).__name__}: {exc}); check "
                              "the server is up and serves this stage's model") from exc

    def map(self, send: Callable[[T], R], items: Sequence[T], label: str) -> list[R]:
        """`send(item)` for every item, `score.concurrency` at a time, results in item order."""
        with ThreadPoolExecutor(self.cfg.concurrency) as pool, tqdm(total=len(items), desc=label, unit="req",
                                                                    disable=len(items) < 16) as bar:
            results = []
            for result in pool.map(lambda item: self.call(lambda: send(item)), items):
                results.append(result)
                bar.update(1)
            return results


def _api_key(cfg: ScoreConfig, url: str) -> str:
    key = os.environ.get(cfg.api_key_env, "")
    if key:
        return key
    if (urlparse(url).hostname or "") in LOOPBACK_HOSTS:
        return EMPTY_KEY
    raise ConfigError(f"environment variable {cfg.api_key_env} is not set: export {cfg.api_key_env}=<key> for {url} "
                      f"(EMPTY for a server started without --api-key); score.api_key_env names the variable")


def _same_model(served: str, model_path: str | Path) -> bool:
    """Whether a served model name/root names `model_path`: the same existing directory, or the same last part."""
    here, there = Path(str(model_path)), Path(served)
    if here.exists() and there.exists():
        return here.resolve() == there.resolve()
    return here.name == there.name


def load_encoder(model_path: str | Path, gguf_file: str | None, trust_remote_code: bool,
                 max_length: int) -> tuple[PreTrainedTokenizerBase, int, int]:
    """(tokenizer, context length, hidden size) of a model, without its weights: what the server path encodes with."""
    source, gguf_file = split_gguf(model_path, gguf_file)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code, **({"gguf_file": gguf_file} if gguf_file else {})}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        config = AutoConfig.from_pretrained(source, **extra)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the tokenizer and config of {source!r}: {exc}; the server backend encodes "
                          "samples here, so the model dir (or an offline hub id) must be readable") from exc
    limit = getattr(config, "max_position_embeddings", None) or 2048
    return tokenizer, min(max_length, limit), int(config.hidden_size)
