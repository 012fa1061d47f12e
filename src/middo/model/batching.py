"""Length-sorted batches under a token budget, and padding into tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from middo.errors import ConfigError


def budget_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped into batches of similar length with `batch size x longest <= token_budget`.

    Longest first, so a budget that does not fit in memory fails on the first batch. A sample longer than
    the budget gets a batch of its own.
    """
    if token_budget < 1:
        raise ConfigError(f"token budget must be a positive number of tokens, got {token_budget}")
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) + 1) * width > token_budget:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_right(rows: Sequence[Sequence[int]], pad_value: int | bool) -> torch.Tensor:
    """Stack rows into one tensor, padded on the right to the longest row."""
    width = max(len(row) for row in rows)
    dtype = torch.bool if isinstance(pad_value, bool) else torch.long
    out = torch.full((len(rows), width), pad_value, dtype=dtype)
    for index, row in enumerate(rows):
        out[index, : len(row)] = torch.tensor(list(row), dtype=dtype)
    return out


def pad_left(rows: Sequence[Sequence[int]], pad_value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask (for batched generation)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_value, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if row:
            ids[index, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            attention[index, width - len(row) :] = 1
    return ids, attention


def sized_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped `batch_size` at a time after sorting by length (longest first), so padding stays small."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
