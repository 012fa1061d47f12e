"""The training loop shared by SFT and pretraining: AdamW, warmup + cosine, accumulation, clipping, a loss log."""

from __future__ import annotations

import csv
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel

from middo.model.batching import pad_right
from middo.model.encode import Encoded
from middo.model.forward import body_and_head, causal_states


@dataclass(frozen=True)
class Schedule:
    """Optimiser and schedule settings (from TrainConfig or PretrainConfig)."""

    lr: float
    min_lr_ratio: float
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    grad_accum: int
    epochs: int
    max_steps: int | None
    seed: int


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_ratio` at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def batch_nll(model: PreTrainedModel, rows: list[Encoded], pad_id: int) -> tuple[torch.Tensor, int]:
    """Summed NLL over the target (assistant) tokens of a padded batch, and their count."""
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    ids = pad_right([row.input_ids for row in rows], pad_id).to(device)
    targets = pad_right([row.assistant_mask for row in rows], False).to(device)[:, 1:]
    hidden = causal_states(body, ids)[:, :-1]  # right padding, no mask needed: see causal_states
    logits = head(hidden[targets]).float()  # lm_head only on target positions
    return F.cross_entropy(logits, ids[:, 1:][targets], reduction="sum"), int(targets.sum())


def optimiser_steps(n_batches: int, schedule: Schedule) -> int:
    """Number of optimiser steps the loop will take."""
    total = schedule.epochs * math.ceil(n_batches / schedule.grad_accum)
    return min(total, schedule.max_steps) if schedule.max_steps else total


def train_loop(
    model: PreTrainedModel,
    batches: list[list[Encoded]],
    pad_id: int,
    schedule: Schedule,
    autocast_dtype: torch.dtype | None = None,
    log_path: str | Path | None = None,
    desc: str = "train",
    progress: bool = True,
) -> dict:
    """Train `model` in place on `batches` (shuffled each epoch with `schedule.seed`); return loss/speed figures."""
    torch.manual_seed(schedule.seed)
    total = optimiser_steps(len(batches), schedule)
    warmup = math.ceil(schedule.warmup_ratio * total)
    optimiser = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: lr_factor(step, total, warmup, schedule.min_lr_ratio)
    )
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else nullcontext()
    rows_log: list[dict] = []
    real_tokens = 0
    started = time.perf_counter()
    model.train()
    with tqdm(total=total, desc=desc, unit="step", disable=not progress) as bar:
        for epoch in range(schedule.epochs):
            order = list(range(len(batches)))
            random.Random(schedule.seed * 1000 + epoch).shuffle(order)
            for start in range(0, len(order), schedule.grad_accum):
                if len(rows_log) >= total:
                    break
                group = [batches[i] for i in order[start : start + schedule.grad_accum]]
                n_targets = sum(sum(sum(row.assistant_mask[1:]) for row in batch) for batch in group)
                step_loss = 0.0
                for batch in group:  # token-weighted mean over the whole accumulation group
                    with autocast:
                        nll, _ = batch_nll(model, batch, pad_id)
                    (nll / max(1, n_targets)).backward()
                    step_loss += nll.item()
                    real_tokens += sum(len(row) for row in batch)
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.max_grad_norm)
                lr = scheduler.get_last_lr()[0]
                optimiser.step()
                scheduler.step()
                optimiser.zero_grad(set_to_none=True)
                loss = step_loss / max(1, n_targets)
                rows_log.append({"step": len(rows_log) + 1, "epoch": epoch, "loss": loss, "lr": lr,
                                 "grad_norm": float(grad_norm), "tokens": n_targets})  # fmt: skip
                bar.set_postfix(loss=f"{loss:.4f}")
                bar.update(1)
    model.eval()
    seconds = time.perf_counter() - started
    if log_path:
        write_log(rows_log, log_path)
    tail = [row["loss"] for row in rows_log[-max(1, len(rows_log) // 10) :]]
    return {
        "steps": len(rows_log),
        "loss_first": rows_log[0]["loss"] if rows_log else float("nan"),
        "loss_last": sum(tail) / len(tail) if tail else float("nan"),
        "seconds": seconds,
        "tokens_per_s": real_tokens / seconds if seconds else float("nan"),
        "tokens_seen": real_tokens,
    }


def write_log(rows: list[dict], path: str | Path) -> None:
    """Per-step log as CSV (a DVC plot: x=step, y=loss)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "epoch", "loss", "lr", "grad_norm", "tokens"])
        writer.writeheader()
        writer.writerows(rows)
