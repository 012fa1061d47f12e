"""The real scorers the stage gives the gate: prompt embeddings under Mr, losses under M0 (a model that saw neither
parent nor child), the judge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from middo.model.config import EmbedConfig, ModelConfig
from middo.model.forward import score_forward
from middo.signals.judge import Judge, judge_samples


class ModelScorer:
    """Mean assistant-token NLL and (unless `pooling` is None) prompt embedding under one model, from one
    `score_forward` pass, memoised by id.

    `load` returns `(model, tokenizer)`; it is called on first use.

    The score stage made D(r-1)'s embeddings with the same function and Mr, so child and dataset vectors are
    comparable.
    """

    def __init__(self, load: Callable[[], tuple], token_budget: int, model_cfg: ModelConfig,
                 pooling: EmbedConfig | None):
        self._load, self._model = load, None
        self.token_budget, self.model_cfg, self.pooling = token_budget, model_cfg, pooling
        self._loss: dict[str, float] = {}
        self._vectors: dict[str, np.ndarray] = {}

    @classmethod
    def from_path(cls, model_path: str | Path, token_budget: int, model_cfg: ModelConfig,
                  pooling: EmbedConfig | None, gguf_file: str | None = None) -> ModelScorer:
        """A scorer that loads the model at `model_path` on first use (never, if no child needs scoring)."""
        from middo.model.load import load_model

        return cls(lambda: load_model(model_path, gguf_file=gguf_file, device=model_cfg.device, dtype=model_cfg.dtype,
                                      trust_remote_code=model_cfg.trust_remote_code), token_budget, model_cfg, pooling)

    def _ensure(self, samples: list[dict]) -> None:
        todo = list({s["id"]: s for s in samples if s["id"] not in self._loss}.values())
        if not todo:
            return
        if self._model is None:
            self._model = self._load()
        model, tokenizer = self._model
        embed = self.pooling is not None
        result = score_forward(model, tokenizer, todo, self.token_budget, embed=embed,
                               max_length=self.model_cfg.max_length, chat_template=self.model_cfg.chat_template,
                               pooling=self.pooling or EmbedConfig())
        for row, sample_id in enumerate(result.ids):
            self._loss[sample_id] = float(result.loss[row])
            if embed:
                self._vectors[sample_id] = result.embeddings[row]

    def release(self) -> None:
        """Drop the model (scores stay memoised); the next unscored sample loads it again."""
        self._model = None

    def loss(self, samples: list[dict]) -> dict[str, float]:
        """{id: mean assistant-token NLL under the model} (NaN when no assistant token fits the context)."""
        self._ensure(samples)
        return {s["id"]: self._loss[s["id"]] for s in samples}

    def embed(self, samples: list[dict]) -> np.ndarray:
        """Prompt embeddings [N, d] under the model, in the order of `samples`."""
        if self.pooling is None:
            raise ValueError("this scorer computes losses only (pooling=None)")
        self._ensure(samples)
        return np.stack([self._vectors[s["id"]] for s in samples]) if samples else np.zeros((0, 0), np.float32)


def judge_rater(judge: Judge):
    """rate_fn for the gate: `quality` from `middo.signals.judge.judge_samples` with the round's judge."""

    def rate(samples: list[dict]) -> dict[str, float]:
        unique = list({s["id"]: s for s in samples}.values())
        table = judge_samples(unique, judge).table
        return dict(zip(table["id"].to_list(), table["quality"].to_list(), strict=True))

    return rate
