"""`score.backend: server`: per-sample losses from a completions server's prompt log-probabilities.

Each sample is encoded here, by the encoder training uses (`middo.model.encode`), and its token ids go to the server
as the prompt (max_tokens 1) with `prompt_logprobs: 0` (vLLM) or `echo: true, logprobs: 0`. The loss is the mean
NLL over exactly the assistant-masked tokens, the number the `hf` path computes. Before scoring, a probe text
checks that the server's tokenizer splits text as the local one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from middo.errors import ConfigError
from middo.log import get_logger
from middo.model.config import EmbedConfig, ModelConfig
from middo.model.encode import Encoded
from middo.model.forward import ForwardResult, encode_samples
from middo.signals.config import ScoreConfig
from middo.signals.embed_server import server_embeddings
from middo.signals.score_server import ScoreServer, ServerError, load_encoder

log = get_logger(__name__)

PROBE = "middo tokenizer check: The quick brown fox jumps over 13 lazy dogs; 2 + 2 = 4, isn't it?"


def _no_logprobs(server: ScoreServer) -> ServerError:
    other = "echo" if server.cfg.logprobs == "prompt_logprobs" else "prompt_logprobs"
    return ServerError(f"{server.setting} = {server.url} returned no prompt log-probabilities for "
                       f"score.logprobs: {server.cfg.logprobs}; set score.logprobs: {other}, or serve the model "
                       "with vLLM (`vllm serve`, see README), which has both")


def prompt_logprobs(server: ScoreServer, prompt: list[int] | str) -> list[dict[str, float] | None]:
    """Per prompt position, token id (as text) -> logprob of that position's token; position 0 is None."""
    if server.cfg.logprobs == "prompt_logprobs":
        response = server.client.completions.create(model=server.model, prompt=prompt, max_tokens=1,
                                                    temperature=0.0, extra_body={"prompt_logprobs": 0})
        rows = (response.choices[0].model_extra or {}).get("prompt_logprobs")
        if not rows:
            raise _no_logprobs(server)
        return [None if row is None else {key: value["logprob"] for key, value in row.items()} for row in rows]
    response = server.client.completions.create(model=server.model, prompt=prompt, max_tokens=1, temperature=0.0,
                                                echo=True, logprobs=0)
    logprobs = response.choices[0].logprobs
    if logprobs is None or not logprobs.token_logprobs:
        raise _no_logprobs(server)
    n_prompt = response.usage.prompt_tokens if response.usage else len(logprobs.token_logprobs) - 1
    # echo rows carry token text, not ids: the position's own token is the only one asked for (logprobs: 0)
    return [None if lp is None else {"": lp} for lp in logprobs.token_logprobs[:n_prompt]]


def token_logprob(row: dict[str, float], token_id: int) -> float:
    """The logprob of `token_id` in one position's row (an echo row holds just the prompt token's)."""
    if "" in row:
        return row[""]
    return row[str(token_id)]


def check_tokenizer(server: ScoreServer, tokenizer, model_path: str | Path) -> None:
    """Refuse a server whose tokenizer encodes the probe text differently from the local one."""
    expected = tokenizer(PROBE)["input_ids"]
    rows = prompt_logprobs(server, PROBE)
    same = len(rows) == len(expected)
    if same and server.cfg.logprobs == "prompt_logprobs":
        same = all(str(token) in row for token, row in zip(expected[1:], rows[1:], strict=True))
    if not same:
        raise ConfigError(
            f"the model at {server.setting} = {server.url} tokenises text differently from the tokenizer of "
            f"{model_path} ({len(rows)} vs {len(expected)} tokens for a probe): losses would be read for the wrong "
            f"tokens; serve the same model and tokenizer this stage scores ({model_path}; for the base model, "
            "model.base)")


def masked_nll(encoded: Sequence[Encoded], rows: Sequence[list]) -> tuple[np.ndarray, np.ndarray]:
    """(mean NLL [N], scored tokens [N]) over the assistant-masked tokens; token 0 has no prediction, as in `hf`."""
    loss = np.full(len(encoded), np.nan, dtype=np.float64)
    counts = np.zeros(len(encoded), dtype=np.int64)
    for index, (row, logprobs) in enumerate(zip(encoded, rows, strict=True)):
        if len(logprobs) != len(row.input_ids):
            raise ServerError(f"sample {row.id}: {len(logprobs)} prompt log-probabilities for {len(row.input_ids)} "
                              "tokens sent; the server must score the token ids as given")
        picked = [-token_logprob(logprobs[t], row.input_ids[t]) for t in range(1, len(row)) if row.assistant_mask[t]]
        counts[index] = len(picked)
        if picked:
            loss[index] = float(np.sum(picked, dtype=np.float64)) / len(picked)
    return loss, counts


def server_forward(model_path: str | Path, model_cfg: ModelConfig, score_cfg: ScoreConfig, samples: list[dict],
                   url: str, setting: str, pooling: EmbedConfig | None = None,
                   gguf_file: str | None = None) -> ForwardResult:
    """What `forward.score_forward` returns, from the servers: losses from `url` (named by `setting`) and, when
    `pooling` is given, prompt embeddings from `score.embed_url`."""
    tokenizer, limit, hidden = load_encoder(model_path, gguf_file, model_cfg.trust_remote_code, model_cfg.max_length)
    encoded = encode_samples(tokenizer, samples, limit, model_cfg.chat_template, pooling or EmbedConfig())
    server = ScoreServer(url, setting, score_cfg)
    server.bind(model_path)
    check_tokenizer(server, tokenizer, model_path)
    log.info("%s: scoring %d samples on %s", setting, len(encoded), server.model)
    rows = server.map(lambda row: prompt_logprobs(server, row.input_ids), encoded, f"losses {setting}")
    loss, n_tokens = masked_nll(encoded, rows)
    embeddings, fallbacks = None, 0
    if pooling is not None:
        embeddings = server_embeddings(model_path, score_cfg, tokenizer, samples, encoded, limit, hidden, pooling)
        fallbacks = 0 if pooling.pool == "raw" else sum(row.embed_fallback for row in encoded)
    truncated = np.array([row.truncated for row in encoded], dtype=bool)
    return ForwardResult([row.id for row in encoded], loss, n_tokens, embeddings, int(truncated.sum()), truncated,
                         fallbacks)
