"""A local model as judge: each sample's six rating prompts run as one token tree, the shared instructions once.

The tokens every prompt starts with (the chat template and the instructions) are run once per call and their KV
cache is put ahead of every row of a batch. Each row then holds one sample's tree (`middo.signals.judge_tree`):
the prompt block, the response block and the questions, each run of tokens that several prompts share once. One
forward pass over the rows gives the reply distribution at the end of every prompt (`logits` mode), or starts a
greedy reply per prompt, continued from that pass's cache with the tokens off its path masked (`generate` mode).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.errors import ConfigError
from middo.model.batching import budget_batches
from middo.model.encode import ensure_chat_template
from middo.model.forward import ENCODE_CHUNK, body_and_head, context_length
from middo.signals.judge_encode import RatingInput, encode_ratings
from middo.signals.judge_logits import ScoreTokens, expected_scores, score_tokens
from middo.signals.judge_prompts import ASPECTS, JudgePrompts
from middo.signals.judge_tree import lay_out

N = len(ASPECTS)
TREE_ATTENTION = ("sdpa", "eager")  # the attention kernels that take a tree's 4D mask


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
    first = encoded[0].segments[0]
    length = min(len(row.segments[0]) for row in encoded) - 1  # each row keeps a token of its root
    for row in encoded[1:]:
        length = next((i for i in range(length) if row.segments[0][i] != first[i]), length)
    if length < 1:
        return Shared(0, None)
    body, _ = body_and_head(model)
    ids = torch.tensor([first[:length]], device=next(model.parameters()).device)
    return Shared(length, body(input_ids=ids, use_cache=True).cache)


def _tree_pass(model: PreTrainedModel, batch: list[RatingInput], pad_id: int, shared: Shared, extra: list[int],
               keep_cache: bool):
    """Last hidden states [B, L, d] of the batch's trees, their layout, and the KV cache (when `keep_cache`)."""
    body, _ = body_and_head(model)
    parameter = next(model.parameters())
    layout = lay_out(batch, shared.length, pad_id, extra, parameter.dtype, parameter.device)
    cache = None
    if shared.cache is not None:
        cache = copy.deepcopy(shared.cache)
        cache.batch_repeat_interleave(len(batch))
    out = body(input_ids=layout.ids, attention_mask=layout.mask, position_ids=layout.positions, cache=cache,
               use_cache=keep_cache)
    return out.last_hidden_state, layout, out.cache if keep_cache else None


@torch.inference_mode()
def rate_batch_logits(model: PreTrainedModel, batch: list[RatingInput], pad_id: int, tokens: ScoreTokens,
                      shared: Shared):
    """(expected scores [B, 6], score mass [B, 6]) for a batch of samples."""
    extra = [tokens.digits[1]] if tokens.two_step else []  # logits after a `1` come from the same pass
    hidden, layout, _ = _tree_pass(model, batch, pad_id, shared, extra, keep_cache=False)
    _, head = body_and_head(model)
    rows = torch.arange(len(batch), device=hidden.device)[:, None]
    first = head(hidden[rows, layout.ends].flatten(0, 1)).float()
    second = head(hidden[rows, layout.extras].flatten(0, 1)).float() if extra else None
    scores, mass = expected_scores(first, second, tokens)
    return scores.view(len(batch), N).numpy(), mass.view(len(batch), N).numpy()


@torch.inference_mode()
def rate_batch_generate(model: PreTrainedModel, batch: list[RatingInput], pad_id: int, stop_ids: set[int],
                        max_new_tokens: int, shared: Shared) -> list[list[list[int]]]:
    """Greedy reply token ids [B][6] (without the stop token), decoded from the tree pass's cache."""
    hidden, layout, cache = _tree_pass(model, batch, pad_id, shared, [], keep_cache=True)
    body, head = body_and_head(model)
    device = hidden.device
    rows = torch.arange(len(batch), device=device)[:, None]
    step_hidden = hidden[rows, layout.ends].flatten(0, 1)  # [B * 6, d]: one reply per prompt
    cache.batch_repeat_interleave(N)
    shared_mask = torch.ones(len(batch) * N, shared.length, dtype=torch.long, device=device)
    mask = torch.cat([shared_mask, layout.on_path.flatten(0, 1).long()], dim=1)  # each reply sees its own prompt
    depths = layout.depths.flatten()
    replies: list[list[int]] = [[] for _ in range(len(batch) * N)]
    done = torch.zeros(len(replies), dtype=torch.bool, device=device)
    stops = torch.tensor(sorted(stop_ids), device=device)
    for step in range(max_new_tokens):
        next_ids = head(step_hidden).argmax(dim=-1)
        done |= torch.isin(next_ids, stops)
        for row_index in (~done).nonzero(as_tuple=True)[0].tolist():
            replies[row_index].append(int(next_ids[row_index]))
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(len(replies), 1, dtype=mask.dtype, device=device)], dim=1)
        out = body(input_ids=next_ids[:, None], attention_mask=mask, position_ids=(depths + step)[:, None],
                   cache=cache, use_cache=True)
        step_hidden = out.last_hidden_state[:, -1]
    return [replies[start : start + N] for start in range(0, len(replies), N)]


def _stop_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def rate_local(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict],
               token_budget: int, generate: bool, max_new_tokens: int = 8, max_length: int | None = None,
               chat_template: str | None = None, progress: bool = True,
               prompts: JudgePrompts | None = None) -> LocalRatings:
    """Six ratings per sample (dicts with `id`, `messages`) by the local model, batched by length under a budget,
    `ENCODE_CHUNK` samples tokenised at a time.

    `prompts`: the rating prompts (`judge.prompts`); None takes the packaged ones."""
    ensure_chat_template(tokenizer, chat_template)
    attention = model.config._attn_implementation
    if attention not in TREE_ATTENTION:
        raise ConfigError(f"the local judge runs each sample's prompts as a tree with a 4D attention mask, which "
                          f"{attention!r} attention does not take; load the judge model with one of {TREE_ATTENTION}")
    room = max_new_tokens if generate else 1
    limit = context_length(model, max_length) - room
    n = len(samples)
    if generate:
        out = LocalRatings([], None, None, [[""] * N for _ in range(n)], 0)
        reader = _Reader(tokenizer, None, _stop_ids(model, tokenizer), max_new_tokens)
    else:
        out = LocalRatings([], np.full((n, N), np.nan), np.full((n, N), np.nan), None, 0)
        reader = _Reader(tokenizer, score_tokens(tokenizer), set(), 1)
    chunks = range(0, n, ENCODE_CHUNK)
    for number, start in enumerate(chunks, 1):
        chunk = samples[start : start + ENCODE_CHUNK]
        encoded = [encode_ratings(tokenizer, s["id"], list(s["messages"]), limit, prompts) for s in chunk]
        label = f"judge ({'generate' if generate else 'logits'})"
        label += "" if len(chunks) == 1 else f" chunk {number}/{len(chunks)}"
        _rate_chunk(model, encoded, start, out, reader, token_budget, label if progress else None)
    return out


@dataclass
class _Reader:
    """How replies are read: the tokenizer, the score tokens (`logits`) or the stop tokens and reply length."""

    tokenizer: PreTrainedTokenizerBase
    score: ScoreTokens | None
    stop_ids: set[int]
    room: int  # reply tokens per question


def _rate_chunk(model: PreTrainedModel, encoded: list[RatingInput], start: int, out: LocalRatings, reader: _Reader,
                token_budget: int, label: str | None) -> None:
    """Rate the trees `encoded` (samples `start` on) into `out`: its ratings or replies, ids, cuts and tokens."""
    tokenizer = reader.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    shared = shared_prefix(model, encoded) if encoded else Shared(0, None)
    costs = [row.cost() - shared.length + (N * reader.room) for row in encoded]
    with tqdm(total=sum(costs), desc=label, unit="tok", disable=label is None) as bar:
        for batch in budget_batches(costs, token_budget):
            rows = [encoded[i] for i in batch]
            at = [start + i for i in batch]
            if reader.score is None:
                generated = rate_batch_generate(model, rows, pad_id, reader.stop_ids, reader.room, shared)
                for index, reply_ids in zip(at, generated, strict=True):
                    out.replies[index] = [tokenizer.decode(ids, skip_special_tokens=False) for ids in reply_ids]
            else:
                out.scores[at], out.mass[at] = rate_batch_logits(model, rows, pad_id, reader.score, shared)
            bar.update(sum(costs[i] for i in batch))
    out.ids += [row.id for row in encoded]
    out.truncated += sum(row.truncated for row in encoded)
    out.tokens += shared.length + sum(costs)
