"""Params sections of the model layer: `model`, `train`, `eval`, `pretrain`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from middo.config import check


@dataclass(frozen=True)
class ModelConfig:
    """Section `model`: which base model M0 is and how to run it."""

    base: str
    """Base model M0: a local model dir, a hub id, or a `.gguf` file (required)."""
    gguf_file: str | None = None
    """GGUF file name inside `base` (a dir or hub id); null for safetensors/pytorch weights."""
    max_length: int = 1024
    """Context length in tokens; longer samples lose prompt tokens from the left (counted in metrics)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights and compute type; `auto` is bfloat16 on GPU and float32 on CPU (bf16 on CPU is very slow)."""
    chat_template: str | None = None
    """Chat template when the tokenizer has none: `chatml` or a Jinja string; null uses the tokenizer's own."""
    device: str | None = None
    """Torch device (`cpu`, `cuda`, `cuda:1`); null picks CUDA when available."""

    def __post_init__(self) -> None:
        check(bool(self.base), "model.base is empty; set it to a model dir, a hub id or a .gguf file")
        check(self.max_length >= 16, f"model.max_length = {self.max_length}; use at least 16 tokens")


@dataclass(frozen=True)
class EmbedConfig:
    """Section `embed`: which tokens the prompt embedding averages (last-layer states of the same forward pass as the
    losses). Used wherever embeddings are taken: the score stage and the refine gate's near-duplicate and density
    checks."""

    pool: Literal["user", "last_user", "prompt", "raw"] = "user"
    """`user`: the content of every user turn (no template markup, no system block the template inserts, no role
    tokens); `last_user`: the last user turn's content only; `prompt`: every token before the response; `raw`: the
    user text alone, without template, in a second pass (the reference's embedding; costs a prompt-only pass)."""
    system: bool = False
    """Also average the content of a system message the sample itself carries (all pools but `prompt`)."""


@dataclass(frozen=True)
class TrainConfig:
    """Section `train`: SFT of the base model on a round's dataset (loss on assistant tokens only)."""

    epochs: int = 3
    """Passes over the dataset."""
    lr: float = 1e-3
    """Peak AdamW learning rate (reached after warmup, then cosine decay to `min_lr_ratio * lr`)."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of `lr`."""
    warmup_ratio: float = 0.05
    """Fraction of optimiser steps with linear warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    token_budget: int = 4096
    """Padded tokens per micro-batch (batch size x longest sample); lower it if memory runs out."""
    grad_accum: int = 1
    """Micro-batches per optimiser step."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (null: run all epochs)."""
    seed: int = 0
    """Seed of batch order and dropout: the same seed gives the same weights on CPU."""

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"train.epochs = {self.epochs}; use 1 or more")
        check(self.lr > 0, f"train.lr = {self.lr}; use a positive learning rate such as 1e-3")
        check(0 <= self.min_lr_ratio <= 1, f"train.min_lr_ratio = {self.min_lr_ratio}; use a value in [0, 1]")
        check(0 <= self.warmup_ratio < 1, f"train.warmup_ratio = {self.warmup_ratio}; use a value in [0, 1)")
        check(self.weight_decay >= 0, f"train.weight_decay = {self.weight_decay}; use 0 or more")
        check(self.token_budget >= 16, f"train.token_budget = {self.token_budget}; use at least 16 tokens")
        check(self.grad_accum >= 1, f"train.grad_accum = {self.grad_accum}; use 1 or more")
        check(self.max_grad_norm > 0, f"train.max_grad_norm = {self.max_grad_norm}; use a positive norm")
        check(self.max_steps is None or self.max_steps >= 1, "train.max_steps must be null or at least 1")


@dataclass(frozen=True)
class EvalConfig:
    """Section `eval`: held-out NLL and greedy exact-match accuracy."""

    token_budget: int = 8192
    """Padded tokens per batch of the NLL pass."""
    gen_batch_size: int = 16
    """Prompts per batch of greedy generation (left padded)."""
    max_new_tokens: int = 64
    """Generation length for samples with a checkable answer (`meta.answer`)."""
    group_by: str | None = None
    """A `meta` key whose values break exact match down by group (`exact_match_by_<key>`); null: no breakdown."""

    def __post_init__(self) -> None:
        check(self.token_budget >= 16, f"eval.token_budget = {self.token_budget}; use at least 16 tokens")
        check(self.gen_batch_size >= 1, f"eval.gen_batch_size = {self.gen_batch_size}; use 1 or more")
        check(self.max_new_tokens >= 1, f"eval.max_new_tokens = {self.max_new_tokens}; use 1 or more")


@dataclass(frozen=True)
class PretrainConfig:
    """Section `pretrain` (optional; the offline demo has it): build the base model `model.base` from a config, with
    a tokenizer trained on a plain-text corpus, and pretrain it briefly on that corpus, in a stage before round 1."""

    corpus: str
    """Plain-text corpus, one text per line (required when the section is present)."""
    size: Literal["tiny", "small"] = "tiny"
    """Model size: `tiny` (~0.8M parameters: the CPU demo and tests) or `small` (~4.6M)."""
    epochs: int = 1
    """Passes over the text corpus."""
    seq_len: int = 256
    """Tokens per packed training sequence."""
    batch_size: int = 16
    """Sequences per optimiser step."""
    lr: float = 3e-3
    """Peak AdamW learning rate."""
    warmup_ratio: float = 0.05
    """Fraction of steps with linear warmup before cosine decay."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    max_steps: int | None = None
    """Stop after this many steps (null: run all epochs)."""
    seed: int = 0
    """Seed of initialisation and batch order."""

    def __post_init__(self) -> None:
        check(bool(self.corpus), "pretrain.corpus is empty; set it to a text file with one text per line")
        check(self.epochs >= 1, f"pretrain.epochs = {self.epochs}; use 1 or more")
        check(self.seq_len >= 16, f"pretrain.seq_len = {self.seq_len}; use at least 16 tokens")
        check(self.batch_size >= 1, f"pretrain.batch_size = {self.batch_size}; use 1 or more")
        check(self.lr > 0, f"pretrain.lr = {self.lr}; use a positive learning rate such as 3e-3")
        check(0 <= self.warmup_ratio < 1, f"pretrain.warmup_ratio = {self.warmup_ratio}; use a value in [0, 1)")
        check(self.weight_decay >= 0, f"pretrain.weight_decay = {self.weight_decay}; use 0 or more")
        check(self.max_grad_norm > 0, f"pretrain.max_grad_norm = {self.max_grad_norm}; use a positive norm")
        check(self.max_steps is None or self.max_steps >= 1, "pretrain.max_steps must be null or at least 1")
