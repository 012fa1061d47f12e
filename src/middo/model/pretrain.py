"""Plain causal-LM pretraining on text lines, so the demo base model M0 is weak rather than random."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model.build import init_base_model, read_texts
from middo.model.config import ModelConfig, PretrainConfig, TrainConfig
from middo.model.encode import Encoded
from middo.model.load import load_model, pick_device
from middo.model.sft import fit, sft_config, use_bf16

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
    device: torch.device,
    progress: bool = True,
) -> dict:
    """Train `model` in place on every token of `lines` (the same trainer as SFT); return loss and speed figures."""
    sequences = pack_texts(tokenizer, lines, config.seq_len)
    if not sequences:
        raise InputError("pretraining corpus is empty; pass a text file with one text per line")
    schedule = TrainConfig(epochs=config.epochs, lr=config.lr, scheduler="cosine_with_min_lr", min_lr_ratio=0.1,
                           warmup_ratio=config.warmup_ratio, weight_decay=config.weight_decay,
                           batch_size=config.batch_size, max_grad_norm=config.max_grad_norm,
                           max_steps=config.max_steps, save_steps=0, seed=config.seed,
                           gradient_checkpointing=False)  # fmt: skip
    bf16 = use_bf16(schedule, device)
    with tempfile.TemporaryDirectory(prefix="middo-pretrain-") as scratch:
        args = sft_config(schedule, Path(scratch), bf16, use_cpu=device.type == "cpu", progress=progress)
        result = fit(model, tokenizer, sequences, schedule, args)
    return {**result.figures, "sequences": len(sequences), "corpus_tokens": sum(map(len, sequences))}


@dataclass(frozen=True)
class PretrainPaths:
    """Files of the pretrain stage."""

    texts: tuple[Path, ...]
    """Plain-text files, one text per line."""
    output: Path
    """Model dir to write (the base model M0)."""
    metrics: Path
    """Metrics JSON to write."""


def run_pretrain(paths: PretrainPaths, config: PretrainConfig, model_config: ModelConfig) -> dict:
    """Build and pretrain the base model at `paths.output`; write the metrics."""
    metrics = build_and_pretrain(paths.texts, paths.output, config, model_config)
    write_metrics(metrics, paths.metrics)
    return metrics


def build_and_pretrain(
    texts: Sequence[str | Path],
    output_dir: str | Path,
    config: PretrainConfig,
    model_config: ModelConfig,
    progress: bool = True,
) -> dict:
    """Build a `config.size` base model with a tokenizer trained on `texts`, pretrain it on them, save it (fp32)."""
    init_base_model(output_dir, texts, config.size, seed=config.seed)
    device = pick_device(model_config.device)
    model, tokenizer = load_model(output_dir, device="cpu", dtype="float32")
    figures = pretrain(model, tokenizer, read_texts(texts), config, device, progress)
    model.save_pretrained(output_dir)
    log.info("pretrained %s: loss %.3f -> %.3f", output_dir, figures["loss_first"], figures["loss_last"])
    return {**figures, "size": config.size, "parameters": sum(p.numel() for p in model.parameters())}
