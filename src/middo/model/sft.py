"""TRL's SFTTrainer on middo's own tokenisation: pre-tokenised rows whose labels are the assistant mask, length-grouped
micro-batches (a fixed size or a token budget), checkpoints to resume from, and DVCLive curves.

The rows come from the same encoder as the score stage (`middo.model.encode`), so training and scoring count the same
tokens whatever the chat template. TRL is told the rows are prepared (`skip_prepare_dataset`): it neither re-renders
the template nor truncates; its fused, tiled LM head scores only the label positions (on a CPU too: see
`fit_lm_head_to_cpu`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import SFTConfig, SFTTrainer
from trl.kernels import chunked_logprob
from trl.trainer import utils as trl_utils

from middo.errors import ConfigError
from middo.log import get_logger
from middo.model.batching import budget_batches, sized_batches
from middo.model.config import TrainConfig
from middo.model.encode import Encoded

log = get_logger(__name__)

IGNORE = -100
MANAGED = {
    "num_train_epochs": "epochs", "learning_rate": "lr", "lr_scheduler_type": "scheduler",
    "warmup_steps": "warmup_ratio", "weight_decay": "weight_decay", "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum", "max_grad_norm": "max_grad_norm", "max_steps": "max_steps",
    "bf16": "bf16", "activation_checkpointing": "gradient_checkpointing",
    "gradient_checkpointing": "gradient_checkpointing", "save_steps": "save_steps", "seed": "seed",
    "output_dir": None, "report_to": None, "max_length": None, "dataset_kwargs": None,
}  # fmt: skip
"""SFTConfig fields middo sets from its own params (name of the param), or always sets itself (None)."""
CPU_HEAD_TILE_BYTES = 64 << 20
"""On a CPU, TRL's LM-head tiles hold at most this many bytes of fp32 logits (512 tokens at a 32k vocabulary chunk)."""
LOG_POINTS = 200
"""Loss, learning rate and gradient norm are logged this many times a run (every step of a shorter run): each log
costs a host synchronisation and DVCLive file writes, and a demo round has thousands of steps."""


class LengthGroupedBatches(Sampler[list[int]]):
    """Micro-batches of samples of similar length, in a seeded order that changes with each epoch.

    Under data parallelism accelerate hands every process each n-th batch of this order, so the processes see
    disjoint data and together take the same global batches as one process with `grad_accum` times as many.
    """

    def __init__(self, lengths: Sequence[int], token_budget: int, batch_size: int | None, seed: int):
        self.batches = sized_batches(lengths, batch_size) if batch_size else budget_batches(lengths, token_budget)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of each epoch (also when it resumes part way through one)."""
        self.epoch = epoch

    def __iter__(self):
        order = list(range(len(self.batches)))
        random.Random(self.seed * 1000 + self.epoch).shuffle(order)
        return iter([self.batches[index] for index in order])

    def __len__(self) -> int:
        return len(self.batches)


class StepBar(ProgressCallback):
    """The trainer's progress bar, showing the loss on the bar instead of printing every log line under it."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}")


def fit_lm_head_to_cpu(vocab_size: int) -> None:
    """Have TRL's fused LM head project only the label positions, in tiles of at most CPU_HEAD_TILE_BYTES, on a CPU.

    TRL decides per call (`trl.trainer.utils._use_triton`): with Triton (CUDA, XPU) it projects the label positions;
    elsewhere every position, to keep tile shapes fixed for graph compilers (Neuron). On a CPU nothing is compiled,
    and the prompt and pad positions cost a third of a demo step. Its tiles of 4096 tokens x 32,768 vocabulary
    entries are 0.5 GB each in fp32, several alive at once: on a CPU they are cut to 64 MiB (512 tokens at SmolLM2's
    vocabulary; a small vocabulary keeps 4096). Only which rows are projected, and how many at once, change; the
    kernels stay TRL's. Call it only in a process that trains on a CPU.
    """
    decide = getattr(trl_utils, "_use_triton", None)
    if decide is None or not hasattr(chunked_logprob, "TOKEN_CHUNK_SIZE") or \
            not hasattr(trl_utils, "_CHUNKED_LOGPROB_CHUNK_SIZE"):  # fmt: skip
        log.warning("this trl lacks the LM-head settings middo tunes for a CPU: its LM head projects every position "
                    "in large tiles (slower, more memory)")  # fmt: skip
        return
    vocab_chunk = min(vocab_size, trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE)
    chunked_logprob.TOKEN_CHUNK_SIZE = max(256, min(4096, CPU_HEAD_TILE_BYTES // (4 * vocab_chunk)))
    if getattr(decide, "labels_only", False):
        return

    def labels_only(device: torch.device) -> bool:
        return device.type == "cpu" or decide(device)

    labels_only.labels_only = True
    trl_utils._use_triton = labels_only


class GroupedSFTTrainer(SFTTrainer):
    """SFTTrainer whose training batches come from a `LengthGroupedBatches` sampler, with a quiet progress bar."""

    def __init__(self, *args, batches: LengthGroupedBatches, **kwargs):
        self.batches = batches
        super().__init__(*args, **kwargs)
        if self.args.device.type == "cpu":
            fit_lm_head_to_cpu(self.model.config.get_text_config().vocab_size)
        for noisy in (PrinterCallback, ProgressCallback):
            self.remove_callback(noisy)
        if not self.args.disable_tqdm:
            self.add_callback(StepBar())

    def get_train_dataloader(self) -> DataLoader:
        loader = DataLoader(self.train_dataset, batch_sampler=self.batches, collate_fn=self.data_collator,
                            num_workers=self.args.dataloader_num_workers)  # fmt: skip
        return self.accelerator.prepare(loader)


def label_rows(rows: Sequence[Encoded]) -> Dataset:
    """The rows as a dataset of `input_ids` and `labels` (the token where the assistant mask is set, else -100)."""
    labels = [[tok if keep else IGNORE for tok, keep in zip(row.input_ids, row.assistant_mask, strict=True)]
              for row in rows]  # fmt: skip
    return Dataset.from_dict({"input_ids": [row.input_ids for row in rows], "labels": labels})


def check_extra(extra: dict) -> None:
    """Reject `train.extra` keys that SFTConfig lacks (naming close fields) or that a middo param already sets."""
    known = {field.name for field in dataclasses.fields(SFTConfig)}
    for key in extra:
        if key in MANAGED:
            owner = f"set train.{MANAGED[key]} instead" if MANAGED[key] else "middo sets it itself"
            raise ConfigError(f"params.yaml: train.extra.{key} is not allowed: {owner}")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see the fields of trl.SFTConfig"
            raise ConfigError(f"params.yaml: train.extra.{key} is not a field of trl.SFTConfig{hint}")


def sft_config(config: TrainConfig, output_dir: Path, bf16: bool, use_cpu: bool, progress: bool) -> SFTConfig:
    """The SFTConfig of a `train` section (checkpoints go to `output_dir`)."""
    check_extra(config.extra)
    scheduler_kwargs = {"min_lr_rate": config.min_lr_ratio} if config.scheduler == "cosine_with_min_lr" else {}
    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
        learning_rate=config.lr, lr_scheduler_type=config.scheduler, lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=config.warmup_ratio,  # a value below 1 is a fraction of the steps
        weight_decay=config.weight_decay, per_device_train_batch_size=config.batch_size or 1,
        gradient_accumulation_steps=config.grad_accum, max_grad_norm=config.max_grad_norm, bf16=bf16,
        activation_checkpointing=config.gradient_checkpointing, seed=config.seed, data_seed=config.seed,
        save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 1, save_total_limit=2,
        logging_steps=1 / LOG_POINTS, report_to="none", disable_tqdm=not progress, use_cpu=use_cpu, max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True}, **config.extra,
    )  # fmt: skip


def complete_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint in `directory` that was written to the end (its trainer_state.json parses), if any."""
    candidates = sorted(directory.glob("checkpoint-*"), key=lambda path: int(path.name.rsplit("-", 1)[-1]))
    for candidate in reversed(candidates):
        try:
            json.loads((candidate / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return candidate
    return None


@dataclass(frozen=True)
class FitResult:
    """A finished `fit`: the trainer (holding the trained model) and its figures."""

    trainer: SFTTrainer
    figures: dict


def fit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Encoded],
    config: TrainConfig,
    args: SFTConfig,
    resume: Path | None = None,
    peft_config=None,
    callbacks: Sequence = (),
) -> FitResult:
    """Train `model` on `rows` with SFTTrainer (resuming from the checkpoint `resume` if given)."""
    batches = LengthGroupedBatches([len(row) for row in rows], config.token_budget, config.batch_size, config.seed)
    if config.max_steps:  # transformers lets max_steps override the epochs; middo stops at whichever comes first
        args.max_steps = min(config.max_steps, epoch_steps(len(batches), config, args.world_size))
    trainer = GroupedSFTTrainer(model=model, args=args, train_dataset=label_rows(rows), processing_class=tokenizer,
                                peft_config=peft_config, callbacks=list(callbacks), batches=batches)  # fmt: skip
    if resume:
        log.info("resuming from %s", resume)
    hook = drop_right_padding_mask(model)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        if hook:
            hook.remove()
    return FitResult(trainer, figures(trainer, result.metrics, len(batches)))


def drop_right_padding_mask(model: PreTrainedModel) -> RemovableHandle | None:
    """Have the transformer body run right-padded batches without their attention mask (SDPA and eager attention).

    Under causal attention a real token of a right-padded row sees only earlier, real tokens, so its states are the
    same without the mask; pad positions carry no label. Without a mask SDPA takes its fused causal kernel instead of
    a materialised [T, T] mask (a quarter of a CPU forward). Flash attention keeps the mask: it skips the pads.
    The trainer keeps the mask in its batch (TRL counts tokens with it). Returns the hook's handle (None: no hook).
    """
    if model.config._attn_implementation not in ("sdpa", "eager"):
        return None
    body = getattr(model, model.base_model_prefix)

    def without_mask(module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 2 or not bool((mask[:, :-1] >= mask[:, 1:]).all()):
            return None  # no mask, or padding that is not all on the right: keep it
        return args, {**kwargs, "attention_mask": None}

    return body.register_forward_pre_hook(without_mask, with_kwargs=True)


def epoch_steps(n_batches: int, config: TrainConfig, processes: int) -> int:
    """Optimiser steps in `config.epochs` passes over `n_batches` micro-batches shared by `processes`."""
    per_process = math.ceil(n_batches / processes)
    return max(1, math.ceil(config.epochs * math.ceil(per_process / config.grad_accum)))


def figures(trainer: SFTTrainer, run_metrics: dict, n_batches: int) -> dict:
    """Loss and speed figures of a finished run, from the trainer's log history."""
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    tail = losses[-max(1, len(losses) // 10) :]
    tokens = max((entry.get("num_tokens", 0) for entry in history), default=0)
    seconds = run_metrics.get("train_runtime", float("nan"))
    return {
        "steps": trainer.state.global_step,
        "loss_first": losses[0] if losses else math.nan,
        "loss_last": sum(tail) / len(tail) if tail else math.nan,
        "seconds": seconds,
        "tokens_seen": int(tokens),
        "tokens_per_s": tokens / seconds if tokens and seconds else math.nan,
        "batches_per_epoch": n_batches,
        "processes": trainer.accelerator.num_processes,
    }


def use_bf16(config: TrainConfig, device: torch.device) -> bool:
    """Whether training runs in bf16 mixed precision; bf16 requested on a CPU is an error."""
    if config.bf16 is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.bf16 and device.type != "cuda":
        raise ConfigError("train.bf16 is true but training runs on a CPU (bf16 there is emulated and very slow); "
                          "set train.bf16 to null or false, or train on a GPU")  # fmt: skip
    return config.bf16
