"""SFT of the base model on a dataset: loss on assistant tokens only, saved as safetensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from middo.data.schema import read_samples
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model.batching import budget_batches
from middo.model.config import ModelConfig, TrainConfig
from middo.model.forward import context_length, encode_samples
from middo.model.load import load_model, pick_device, pick_dtype
from middo.model.loop import Schedule, train_loop

log = get_logger(__name__)


def schedule_of(config: TrainConfig) -> Schedule:
    """Optimiser settings of a `train` section."""
    return Schedule(
        lr=config.lr,
        min_lr_ratio=config.min_lr_ratio,
        warmup_ratio=config.warmup_ratio,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        grad_accum=config.grad_accum,
        epochs=config.epochs,
        max_steps=config.max_steps,
        seed=config.seed,
    )


@dataclass(frozen=True)
class TrainPaths:
    """Files of the train stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    base: str
    """Base model M0: model dir, hub id or .gguf file."""
    output: Path
    """Model dir M(r) to write."""
    metrics: Path
    """Metrics JSON to write."""
    log: Path | None = None
    """Per-step loss CSV (a DVC plot)."""


def run_train(paths: TrainPaths, config: TrainConfig, model_config: ModelConfig) -> dict:
    """SFT of M0 on the dataset at `paths.data`; write the model and the metrics."""
    samples = read_samples(paths.data).select("id", "messages").to_dicts()
    metrics = train_sft(paths.base, samples, config, model_config, paths.output, paths.log)
    write_metrics(metrics, paths.metrics)
    return metrics


def train_sft(
    base: str | Path,
    samples: Sequence[dict],
    config: TrainConfig,
    model_config: ModelConfig,
    output_dir: str | Path,
    log_path: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune a fresh copy of `base` on `samples` (dicts with `id`, `messages`); save model + tokenizer.

    Weights stay fp32 (master copy); on GPU the compute runs under bf16 autocast when `model.dtype` is auto or
    bfloat16. Batches are length-grouped under `train.token_budget` and shuffled with `train.seed`.
    Returns the metrics dict (also the caller's to write).
    """
    torch.manual_seed(config.seed)
    device = pick_device(model_config.device)
    compute = pick_dtype(model_config.dtype, device)
    model, tokenizer = load_model(base, model_config.gguf_file, str(device), dtype="float32")
    encoded = encode_samples(tokenizer, samples, context_length(model, model_config.max_length),
                             model_config.chat_template)  # fmt: skip
    trainable = [row for row in encoded if any(row.assistant_mask[1:])]
    if not trainable:
        raise InputError(f"none of the {len(encoded)} samples has an assistant token to train on")
    batches = [
        [trainable[i] for i in batch] for batch in budget_batches(list(map(len, trainable)), config.token_budget)
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    log.info("SFT of %s on %d samples in %d batches (%s, compute %s)", base, len(trainable), len(batches), device,
             compute)  # fmt: skip
    autocast = compute if compute != torch.float32 else None
    figures = train_loop(model, batches, pad_id, schedule_of(config), autocast, log_path, "train", progress)
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)  # keeps the chat template used for training
    return {
        **figures,
        "samples": len(encoded),
        "samples_without_assistant_tokens": len(encoded) - len(trainable),
        "truncated": sum(row.truncated for row in encoded),
        "assistant_tokens": sum(sum(row.assistant_mask[1:]) for row in trainable),
        "batches_per_epoch": len(batches),
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "compute_dtype": str(compute).removeprefix("torch."),
    }
