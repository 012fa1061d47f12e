"""Lay a batch of rating trees out for one forward pass: token ids, position ids and the attention mask of each row.

A row holds one sample's tree (`RatingInput.segments`) segment after segment, without the tokens every sample
shares: those sit in a KV cache ahead of every row. A token sees that shared prefix, every segment on its path from
the root, and the tokens before it in its own segment; its position is its depth in the tree. So the reply
distribution read at the end of each aspect's path is that of its full prompt run alone, while every shared run of
tokens is computed once. Padding tokens see themselves only, and are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from middo.signals.judge_encode import RatingInput


@dataclass
class TreeBatch:
    """One batch of trees as rows; `ends`, `extras` and `depths` are [B, 6] (per sample and aspect)."""

    ids: torch.Tensor  # [B, L] token ids, right-padded
    positions: torch.Tensor  # [B, L] position ids (the shared prefix takes 0 .. shared - 1)
    mask: torch.Tensor  # [B, 1, L, shared + L] additive: 0 where a token may look, the dtype's minimum elsewhere
    on_path: torch.Tensor  # [B, 6, L] bool: the row's tokens on each aspect's path
    ends: torch.Tensor  # row index of the last token of each aspect's prompt
    extras: torch.Tensor | None  # row index of the `extra` token that follows each aspect's prompt
    depths: torch.Tensor  # length of each aspect's prompt, the shared prefix included


@dataclass
class _Row:
    ids: list[int]
    positions: list[int]
    spans: list[tuple[int, int]]  # row range of each segment
    ancestors: list[list[int]]  # segments each segment sees whole
    paths: list[list[int]]  # per aspect, its segments
    extras: list[int]


def _row(tree: RatingInput, shared: int, extra: list[int]) -> _Row:
    """One tree's row; `extra` tokens (possibly none) follow the end of each aspect's prompt, once per leaf."""
    segments = [tree.segments[0][shared:], *tree.segments[1:]]
    parents = list(tree.parents)
    starts = [shared]
    for index in range(1, len(segments)):
        starts.append(starts[parents[index]] + len(segments[parents[index]]))
    paths = [tree.path(j) for j in range(len(tree.leaves))]
    extras = [-1] * len(tree.leaves)
    if extra:
        for leaf in dict.fromkeys(tree.leaves):
            segments.append(extra)
            parents.append(leaf)
            starts.append(starts[leaf] + len(segments[leaf]))
    ids, positions, spans = [], [], []
    for segment, start in zip(segments, starts, strict=True):
        spans.append((len(ids), len(ids) + len(segment)))
        ids.extend(segment)
        positions.extend(range(start, start + len(segment)))
    ancestors = [[] for _ in segments]
    for index in range(1, len(segments)):
        ancestors[index] = [*ancestors[parents[index]], parents[index]]
    if extra:
        first_extra = len(tree.segments)
        by_leaf = {parents[k]: spans[k][0] for k in range(first_extra, len(segments))}
        extras = [by_leaf[leaf] for leaf in tree.leaves]
    return _Row(ids, positions, spans, ancestors, paths, extras)


def _visible(row: _Row, length: int) -> torch.Tensor:
    """[length, length] bool: which row tokens each row token sees (padding: itself)."""
    seen = torch.eye(length, dtype=torch.bool)
    for (start, end), ancestors in zip(row.spans, row.ancestors, strict=True):
        seen[start:end, start:end] = torch.ones(end - start, end - start, dtype=torch.bool).tril()
        for ancestor in ancestors:
            seen[start:end, row.spans[ancestor][0] : row.spans[ancestor][1]] = True
    return seen


def lay_out(trees: list[RatingInput], shared: int, pad_id: int, extra: list[int], dtype: torch.dtype,
            device: torch.device) -> TreeBatch:
    """The rows of `trees` after a shared prefix of `shared` tokens; `extra` tokens follow each prompt's end."""
    rows = [_row(tree, shared, extra) for tree in trees]
    length = max(len(row.ids) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    visible = torch.zeros((len(rows), length, length), dtype=torch.bool)
    on_path = torch.zeros((len(rows), len(trees[0].leaves), length), dtype=torch.bool)
    for index, row in enumerate(rows):
        ids[index, : len(row.ids)] = torch.tensor(row.ids, dtype=torch.long)
        positions[index, : len(row.positions)] = torch.tensor(row.positions, dtype=torch.long)
        visible[index] = _visible(row, length)
        for aspect, path in enumerate(row.paths):
            for segment in path:
                on_path[index, aspect, row.spans[segment][0] : row.spans[segment][1]] = True
    mask = torch.zeros((len(rows), 1, length, shared + length), dtype=dtype)
    mask[:, 0, :, shared:].masked_fill_(~visible, torch.finfo(dtype).min)
    ends = torch.tensor([[row.spans[path[-1]][1] - 1 for path in row.paths] for row in rows])
    depths = torch.tensor([[row.positions[row.spans[path[-1]][1] - 1] + 1 for path in row.paths] for row in rows])
    extras = torch.tensor([row.extras for row in rows]) if extra else None
    return TreeBatch(ids.to(device), positions.to(device), mask.to(device), on_path.to(device), ends.to(device),
                     None if extras is None else extras.to(device), depths.to(device))
