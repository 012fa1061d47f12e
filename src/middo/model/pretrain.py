"""Plain causal-LM pretraining on text lines, so the demo base model M0 is weak rather than random."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model.build import init_base_model, read_texts
from middo.model.config import ModelConfig, PretrainConfig
from middo.model.encode import Encoded
from middo.model.load import load_model, pick_device, pick_dtype
from middo.model.loop import Schedule, train_loop

log = get_logger(__name__)


def line_ids(tokenizer: PreTrainedTokenizerBase, line: str, separator: int) -> list[int]:
    """Token ids of one line: an assistant turn of the chat template if there is one, else the line plus eos."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "assistant", "content": line}], tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids if separator in ids else [*ids, separator]
    return [*tokenizer(line, add_special_tokens=False)["input_ids"], separator]


def pack_texts(tokenizer: PreTrainedTokenizerBase, lines: Iterable[str], seq_len: int) -> list[Encoded]:
    """Tokenise lines, each as one assistant chat turn ending with eos, and cut the stream into `seq_len` sequences.

    Wrapping lines in the chat template (when the tokenizer has one) and ending them with eos (`<|im_end|>` for
    built tokenizers) teaches M0 the turn format and when to stop, so its loss on chat samples is not dominated by
    unseen format tokens (which would make short answers look hardest).
    """
    separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    if separator is None:
        raise InputError("the tokenizer has neither an eos nor a bos token; add one to separate pretraining lines")
    stream: list[int] = []
    for line in lines:
        stream.extend(line_ids(tokenizer, line, separator))
    chunks = [stream[start : start + seq_len] for start in range(0, len(stream), seq_len)]
    chunks = [chunk for chunk in chunks if len(chunk) > 1]
    return [Encoded(f"chunk{index}", chunk, [True] * len(chunk), 0, False, [False] * len(chunk))
            for index, chunk in enumerate(chunks)]


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    lines: Iterable[str],
    config: PretrainConfig,
    autocast_dtype: torch.dtype | None = None,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train `model` in place on every token of `lines`; return loss and speed figures."""
    sequences = pack_texts(tokenizer, lines, config.seq_len)
    if not sequences:
        raise InputError("pretraining corpus is empty; pass a text file with one text per line")
    batches = [sequences[start : start + config.batch_size] for start in range(0, len(sequences), config.batch_size)]
    schedule = Schedule(config.lr, 0.1, config.warmup_ratio, config.weight_decay, config.max_grad_norm, 1,
                        config.epochs, config.max_steps, config.seed)  # fmt: skip
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    figures = train_loop(model, batches, pad_id, schedule, autocast_dtype, log_path, "pretrain", progress)
    return {**figures, "sequences": len(sequences), "corpus_tokens": sum(map(len, sequences))}


@dataclass(frozen=True)
class PretrainPaths:
    """Files of the pretrain stage."""

    texts: tuple[Path, ...]
    """Plain-text files, one text per line."""
    output: Path
    """Model dir to write (the base model M0)."""
    metrics: Path
    """Metrics JSON to write."""
    log: Path | None = None
    """Per-step loss CSV (a DVC plot)."""


def run_pretrain(paths: PretrainPaths, config: PretrainConfig, model_config: ModelConfig) -> dict:
    """Build and pretrain the base model at `paths.output`; write the metrics."""
    metrics = build_and_pretrain(paths.texts, paths.output, config, model_config, paths.log)
    write_metrics(metrics, paths.metrics)
    return metrics


def build_and_pretrain(
    texts: Sequence[str | Path],
    output_dir: str | Path,
    config: PretrainConfig,
    model_config: ModelConfig,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Build a `config.size` base model with a tokenizer trained on `texts`, pretrain it on them, save it."""
    init_base_model(output_dir, texts, config.size, seed=config.seed)
    device = pick_device(model_config.device)
    compute = pick_dtype(model_config.dtype, device)
    model, tokenizer = load_model(output_dir, device=str(device), dtype="float32")
    autocast = compute if compute != torch.float32 else None
    figures = pretrain(model, tokenizer, read_texts(texts), config, autocast, log_path, progress)
    model.save_pretrained(output_dir, safe_serialization=True)
    log.info("pretrained %s: loss %.3f -> %.3f", output_dir, figures["loss_first"], figures["loss_last"])
    return {**figures, "size": config.size, "parameters": sum(p.numel() for p in model.parameters())}
