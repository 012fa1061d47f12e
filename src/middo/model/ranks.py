"""Data-parallel forward passes (score, judge, eval): which process this is, its length-balanced shard of the
samples, and every process's rows gathered back to process 0 in dataset order, checked 1:1 by id.

The processes are those a launcher started (`torchrun`, `accelerate launch`, a prefix such as `srun`), as for the
train stage: accelerate's `PartialState` reads their environment and starts the process group (gloo on a CPU, nccl
on CUDA). Without a launcher there is one process and nothing is exchanged, through the same code path. Only process
0 writes outputs. A process that fails fails the stage: the launcher stops the others, and process 0 writes only
after every process's rows arrived, under staging names (`middo.outputs`), so no output is half-written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from middo.errors import ConfigError, JoinError


@dataclass(frozen=True)
class Single:
    """The one process of a run without a launcher, for callers that start no process group (tests, benches)."""

    num_processes: int = 1
    process_index: int = 0
    is_main_process: bool = True


SINGLE = Single()


def launched_world() -> int:
    """How many processes the launcher started (1 without a launcher), read without starting a process group."""
    names = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
    return next((int(os.environ[name]) for name in names if os.environ.get(name)), 1)


def start(device: str | None) -> Any:
    """This process's accelerate `PartialState` (the process group started if a launcher started several)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=device == "cpu" or not torch.cuda.is_available())


def stop(state: Any) -> None:
    """End the process group (when there is one) once the stage is done with it."""
    if state.num_processes > 1:
        state.destroy_process_group()


def rank_device(device: str | None, state: Any) -> str | None:
    """The model device of this process: `model.device` in one process; the process's own GPU (or the CPU) under
    several, where a fixed GPU (`cuda:1`) would put every process on the same one."""
    if state.num_processes == 1 or device == "cpu" or state.device.type == "cpu":
        return device
    if device not in (None, "cuda"):
        raise ConfigError(f"model.device is {device} but {state.num_processes} processes were started: each takes "
                          "its own GPU; set model.device to null or `cuda`")  # fmt: skip
    import torch

    if state.local_process_index >= torch.cuda.device_count():
        raise ConfigError(f"{state.num_processes} processes but this machine has {torch.cuda.device_count()} GPU(s) "
                          "(train.processes sets both the train and the forward stages' processes); use at most one "
                          "process per GPU")  # fmt: skip
    return str(state.device)


def on_rank_device(model_config, state: Any):
    """`model_config` (a ModelConfig) with this process's device (`rank_device`)."""
    return dataclasses.replace(model_config, device=rank_device(model_config.device, state))


def text_length(sample: dict) -> int:
    """Characters of a sample's messages: the balance measure of `shard` (known before any tokenizer loads)."""
    return sum(len(message.get("content") or "") for message in sample["messages"])


def shard_indices(lengths: Sequence[int], rank: int, world: int) -> list[int]:
    """Process `rank`'s share of `world`: longest first, dealt round-robin (so the shares' total lengths differ by
    at most the longest item), returned in input order."""
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    return sorted(order[rank::world])


def shard(samples: Sequence[dict], state: Any) -> list[dict]:
    """This process's length-balanced share of `samples` (dicts with `messages`); all of them in one process."""
    if state.num_processes == 1:
        return list(samples)
    chosen = shard_indices([text_length(sample) for sample in samples], state.process_index, state.num_processes)
    return [samples[index] for index in chosen]


def gather(obj: Any, state: Any) -> list | None:
    """Every process's `obj` (plain Python values and numpy arrays), in process order, on process 0; None on the
    others."""
    if state.num_processes == 1:
        return [obj]
    import torch.distributed as dist

    gathered = [None] * state.num_processes if state.is_main_process else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def gather_rows(columns: dict[str, list | np.ndarray], order: Sequence[str], state: Any,
                what: str) -> dict[str, list | np.ndarray] | None:
    """Every process's rows (`columns`: equal-length lists or arrays, one of them `id`) on process 0, in the order of
    the ids `order`; None on the other processes. The ids must be `order` exactly, each once (a JoinError naming
    `what` otherwise)."""
    parts = gather(columns, state)
    if parts is None:
        return None
    ids = [sample_id for part in parts for sample_id in part["id"]]
    position = {sample_id: index for index, sample_id in enumerate(ids)}
    if len(position) < len(ids) or len(ids) != len(order) or set(order) != position.keys():
        missing, extra = sorted(set(order) - position.keys()), sorted(position.keys() - set(order))
        raise JoinError(f"{what}: the {len(parts)} process(es) returned {len(ids)} rows for {len(order)} samples "
                        f"({len(ids) - len(position)} repeated ids, missing e.g. {missing[:3]}, unknown e.g. "
                        f"{extra[:3]}); every sample must be scored by exactly one process: re-run the stage")
    take = np.array([position[sample_id] for sample_id in order], dtype=np.int64)
    merged: dict[str, list | np.ndarray] = {}
    for name, first in parts[0].items():
        if isinstance(first, np.ndarray):
            merged[name] = np.concatenate([part[name] for part in parts])[take]
        else:
            values = [value for part in parts for value in part[name]]
            merged[name] = [values[index] for index in take]
    return merged


def gather_table(table: pl.DataFrame, order: Sequence[str], state: Any, what: str,
                 arrays: dict[str, np.ndarray] | None = None) -> tuple[pl.DataFrame, dict[str, np.ndarray]] | None:
    """`gather_rows` of a polars table keyed by `id` (same schema on every process) and of per-row `arrays` (row i
    of each belongs to the table's row i); on process 0 the table in the order of `order` and the arrays likewise."""
    arrays = arrays or {}
    clash = set(arrays) & set(table.columns)
    if clash:
        raise ValueError(f"arrays {sorted(clash)} have the names of table columns")
    merged = gather_rows({**table.to_dict(as_series=False), **arrays}, order, state, what)
    if merged is None:
        return None
    frame = pl.DataFrame({name: merged[name] for name in table.columns}, schema=table.schema)
    return frame, {name: merged[name] for name in arrays}
