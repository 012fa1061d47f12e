"""`score.backend: server`: prompt embeddings from a mean-pooling embeddings server (`score.embed_url`).

The pooled tokens (`embed.pool`) are a few runs of a sample's tokens, not the whole input, while the server averages
every token it is sent. Under causal attention a token's state does not depend on later tokens, so the server's mean
over the prefix of length n, M(n), gives sums of states: the states of the run [a, b) sum to b·M(b) - a·M(a). The
prefixes ending at the runs' boundaries go in one request per sample; the embedding is the mean over the runs, the
number the `hf` path computes from one forward pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from middo.errors import ConfigError
from middo.model.config import EmbedConfig
from middo.model.encode import Encoded
from middo.model.forward import raw_encodings
from middo.signals.config import ScoreConfig
from middo.signals.score_server import ScoreServer, ServerError

UNIT_NORM_TOLERANCE = 1e-3  # every vector this close to norm 1: the server normalises (mean states are not unit)


def pooled_runs(mask: list[bool]) -> list[tuple[int, int]]:
    """The [start, end) runs of True in `mask`."""
    runs, start = [], None
    for index, flag in enumerate([*mask, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    return runs


def prefix_means(server: ScoreServer, ids: list[int], lengths: list[int], hidden: int) -> dict[int, np.ndarray]:
    """length -> the server's mean of the states of `ids[:length]`, with the dimension and normalisation checked."""
    response = server.client.embeddings.create(model=server.model, input=[ids[:n] for n in lengths],
                                               encoding_format="float")
    data = sorted(response.data, key=lambda item: item.index)
    if len(data) != len(lengths):
        raise ServerError(f"score.embed_url = {server.url}: {len(data)} embeddings for {len(lengths)} inputs")
    vectors = np.array([item.embedding for item in data], dtype=np.float64)
    if vectors.shape[1] != hidden:
        raise ConfigError(
            f"score.embed_url = {server.url} returns {vectors.shape[1]}-dimensional embeddings, but the round model's "
            f"hidden size is {hidden}: point score.embed_url at a pooling server of the round model itself "
            "(mean of the last hidden states, see README), not a separate embedding model or projection")
    norms = np.linalg.norm(vectors, axis=1)
    if np.all(np.abs(norms - 1) < UNIT_NORM_TOLERANCE):
        raise ConfigError(
            f"score.embed_url = {server.url} returns unit-norm embeddings: the server normalises its pooled states; "
            "restart it with normalisation off and mean pooling, e.g. vLLM --pooler-config "
            "'{\"pooling_type\": \"MEAN\", \"normalize\": false}' (see README)")
    return dict(zip(lengths, vectors, strict=True))


def pooled_embedding(server: ScoreServer, row: Encoded, hidden: int) -> np.ndarray:
    """The mean state over `row.embed_mask`'s tokens, from the server's prefix means."""
    runs = pooled_runs(row.embed_mask)
    if not runs:
        raise ValueError(f"sample {row.id}: no token to pool")
    lengths = sorted({n for run in runs for n in run if n > 0})
    means = prefix_means(server, row.input_ids, lengths, hidden)
    means[0] = np.zeros(hidden)
    total = sum(end * means[end] - start * means[start] for start, end in runs)
    return total / sum(end - start for start, end in runs)


def server_embeddings(model_path: str | Path, score_cfg: ScoreConfig, tokenizer, samples: list[dict],
                      encoded: list[Encoded], limit: int, hidden: int, pooling: EmbedConfig) -> np.ndarray:
    """float32 [N, hidden]: the prompt embeddings `pooling` names, from `score.embed_url` (checked to serve
    `model_path`)."""
    server = ScoreServer(score_cfg.embed_url, "score.embed_url", score_cfg)
    server.bind(model_path)
    rows = raw_encodings(tokenizer, samples, limit, pooling.system) if pooling.pool == "raw" else encoded
    vectors = server.map(lambda row: pooled_embedding(server, row, hidden), rows, "embeddings score.embed_url")
    return np.array(vectors, dtype=np.float32).reshape(len(rows), hidden)
