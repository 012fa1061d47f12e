"""A local model as judge: shared prefixes computed once, then the six rating questions from the cached prefix.

The tokens every prompt starts with (the chat template and the instructions) are run once per call and their KV
cache is copied into each batch. Per batch: one forward pass over the right-padded rest of each sample's prefix
extends that cache, a second one over the branch (the response block, when the prompt questions see the prompt
alone), and the cache is then repeated six times (one row per question), the branch masked out of the prompt
questions' rows; one pass over the six suffixes of every sample gives the reply distribution (`logits` mode) or
starts a greedy reply continued from the same cache (`generate` mode). Padding holes are masked and position ids
are explicit, so each row sees exactly its own unpadded prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.model.batching import budget_batches, pad_right
from middo.model.encode import ensure_chat_template
from middo.model.forward import body_and_head, context_length
from middo.signals.judge_encode import RatingInput, encode_ratings
from middo.signals.judge_logits import ScoreTokens, expected_scores, score_tokens
from middo.signals.judge_prompts import ASPECTS, JudgePrompts

N = len(ASPECTS)


@dataclass
class LocalRatings:
    """Per sample (input order) and aspect: expected scores and score mass (logits) or replies (generate)."""

    ids: list[str]
    scores: np.ndarray | None  # float64 [N, 6] (logits mode)
    mass: np.ndarray | None  # float64 [N, 6]: probability on the score tokens (logits mode)
    replies: list[list[str]] | None  # [N][6] greedy replies (generate mode)
    truncated: int  # samples whose texts were cut to fit the context
    tokens: int = 0  # tokens put through the model: the shared instructions once, each sample's tree, the replies


@dataclass
class Shared:
    """The prefix common to every prompt of a call and its KV cache (None when it is empty)."""

    length: int
    cache: object | None


@torch.inference_mode()
def shared_prefix(model: PreTrainedModel, encoded: list[RatingInput]) -> Shared:
    """Run the longest token prefix common to all samples once (each sample keeps at least one own token)."""
    first = encoded[0].prefix
    length = min(len(row.prefix) for row in encoded) - 1
    for row in encoded[1:]:
        length = next((i for i in range(length) if row.prefix[i] != first[i]), length)
    if length < 1:
        return Shared(0, None)
    body, _ = body_and_head(model)
    ids = torch.tensor([first[:length]], device=next(model.parameters()).device)
    return Shared(length, body(input_ids=ids, use_cache=True).cache)


def _prefix_cache(body, batch: list[RatingInput], pad_id: int, device, shared: Shared):
    """KV cache of each sample's prefix and branch, repeated once per question, with each question row's mask (the
    branch hidden from the questions that continue the prefix) and the length of its context."""
    own = [row.prefix[shared.length :] for row in batch]
    ids = pad_right(own, pad_id).to(device)
    mask = pad_right([[1] * len(row) for row in own], 0).to(device)
    positions = shared.length + torch.arange(ids.shape[1], device=device).expand_as(ids)
    cache = None
    if shared.cache is not None:
        cache = copy.deepcopy(shared.cache)
        cache.batch_repeat_interleave(len(batch))
        mask = torch.cat([torch.ones(len(batch), shared.length, dtype=mask.dtype, device=device), mask], dim=1)
    cache = body(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                 use_cache=True).cache
    prefix_lengths = torch.tensor([len(row.prefix) for row in batch], device=device)
    lengths = prefix_lengths.repeat_interleave(N)
    if any(row.branch for row in batch):
        cache, mask, lengths = _branch_cache(body, batch, pad_id, device, cache, mask, prefix_lengths)
    else:
        cache.batch_repeat_interleave(N)
        mask = mask.repeat_interleave(N, dim=0)
    return cache, mask, lengths


def _branch_cache(body, batch: list[RatingInput], pad_id: int, device, cache, prefix_mask, prefix_lengths):
    """Extend the prefix cache with each sample's branch; per question row, the mask and context length."""
    branches = [row.branch for row in batch]
    ids = pad_right(branches, pad_id).to(device)
    branch_mask = pad_right([[1] * len(branch) for branch in branches], 0).to(device)
    mask = torch.cat([prefix_mask, branch_mask], dim=1)
    positions = prefix_lengths[:, None] + torch.arange(ids.shape[1], device=device)[None, :]
    cache = body(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True).cache
    cache.batch_repeat_interleave(N)
    after = torch.tensor([row.after_branch for row in batch], device=device).view(-1)  # [B * N]
    mask = mask.repeat_interleave(N, dim=0)
    mask[~after, prefix_mask.shape[1] :] = 0
    branch_lengths = torch.tensor([len(branch) for branch in branches], device=device).repeat_interleave(N)
    return cache, mask, prefix_lengths.repeat_interleave(N) + branch_lengths * after


def _suffix_pass(body, cache, context_mask, context_lengths, rows: list[list[int]], pad_id: int, device):
    """Last hidden states [R, S, d] of the suffix rows run on the cache, and the attention mask so far."""
    ids = pad_right(rows, pad_id).to(device)
    mask = torch.cat([context_mask, pad_right([[1] * len(row) for row in rows], 0).to(device)], dim=1)
    positions = context_lengths[:, None] + torch.arange(ids.shape[1], device=device)[None, :]
    out = body(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)
    return out.last_hidden_state, mask


@torch.inference_mode()
def rate_batch_logits(model: PreTrainedModel, batch: list[RatingInput], pad_id: int, tokens: ScoreTokens,
                      shared: Shared):
    """(expected scores [B, 6], score mass [B, 6]) for a batch of samples."""
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    cache, context_mask, context_lengths = _prefix_cache(body, batch, pad_id, device, shared)
    extra = [tokens.digits[1]] if tokens.two_step else []  # logits after a `1` come from the same pass
    rows = [suffix + extra for row in batch for suffix in row.suffixes]
    hidden, _ = _suffix_pass(body, cache, context_mask, context_lengths, rows, pad_id, device)
    index = torch.arange(len(rows), device=device)
    last = torch.tensor([len(row) - 1 - len(extra) for row in rows], device=device)
    first = head(hidden[index, last]).float()
    second = head(hidden[index, last + 1]).float() if extra else None
    scores, mass = expected_scores(first, second, tokens)
    return scores.view(len(batch), N).numpy(), mass.view(len(batch), N).numpy()


@torch.inference_mode()
def rate_batch_generate(model: PreTrainedModel, batch: list[RatingInput], pad_id: int, stop_ids: set[int],
                        max_new_tokens: int, shared: Shared) -> list[list[list[int]]]:
    """Greedy reply token ids [B][6] (without the stop token), decoded from the shared cache."""
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    cache, context_mask, context_lengths = _prefix_cache(body, batch, pad_id, device, shared)
    rows = [suffix for row in batch for suffix in row.suffixes]
    hidden, mask = _suffix_pass(body, cache, context_mask, context_lengths, rows, pad_id, device)
    lengths = torch.tensor([len(row) for row in rows], device=device)
    index = torch.arange(len(rows), device=device)
    step_hidden = hidden[index, lengths - 1]
    replies: list[list[int]] = [[] for _ in rows]
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)
    stops = torch.tensor(sorted(stop_ids), device=device)
    for step in range(max_new_tokens):
        next_ids = head(step_hidden).argmax(dim=-1)
        done |= torch.isin(next_ids, stops)
        for row_index in (~done).nonzero(as_tuple=True)[0].tolist():
            replies[row_index].append(int(next_ids[row_index]))
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype, device=device)], dim=1)
        positions = (context_lengths + lengths + step)[:, None]
        out = body(input_ids=next_ids[:, None], attention_mask=mask, position_ids=positions, cache=cache,
                   use_cache=True)
        step_hidden = out.last_hidden_state[:, -1]
    return [replies[start : start + N] for start in range(0, len(rows), N)]


def _stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def rate_local(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict],
               token_budget: int, generate: bool, max_new_tokens: int = 8, max_length: int | None = None,
               chat_template: str | None = None, share_prefix: bool = True, progress: bool = True,
               prompts: JudgePrompts | None = None) -> LocalRatings:
    """Six ratings per sample (dicts with `id`, `messages`) by the local model, batched by length under a budget.

    `prompts`: the rating prompts (`judge.prompts`); None takes the packaged ones."""
    ensure_chat_template(tokenizer, chat_template)
    tokens = None if generate else score_tokens(tokenizer)
    room = max_new_tokens if generate else 1
    limit = context_length(model, max_length) - room
    encoded = [encode_ratings(tokenizer, s["id"], list(s["messages"]), limit, share_prefix, prompts) for s in samples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    shared = shared_prefix(model, encoded) if encoded else Shared(0, None)
    costs = [row.cost() - shared.length + (N * room) for row in encoded]
    scores = mass = replies = None
    if generate:
        replies = [[""] * N for _ in encoded]
        stop_ids = _stop_ids(model, tokenizer)
    else:
        scores, mass = np.full((len(encoded), N), np.nan), np.full((len(encoded), N), np.nan)
    with tqdm(total=sum(costs), desc=f"judge ({'generate' if generate else 'logits'})", unit="tok",
              disable=not progress) as bar:
        for batch in budget_batches(costs, token_budget):
            rows = [encoded[i] for i in batch]
            if generate:
                generated = rate_batch_generate(model, rows, pad_id, stop_ids, max_new_tokens, shared)
                for index, reply_ids in zip(batch, generated, strict=True):
                    replies[index] = [tokenizer.decode(ids, skip_special_tokens=False) for ids in reply_ids]
            else:
                scores[batch], mass[batch] = rate_batch_logits(model, rows, pad_id, tokens, shared)
            bar.update(sum(costs[i] for i in batch))
    return LocalRatings([row.id for row in encoded], scores, mass, replies, sum(row.truncated for row in encoded),
                        shared.length + sum(costs))
