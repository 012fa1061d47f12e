"""One forward pass per batch: per-sample assistant-token NLL and the prompt embedding, from the same states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.data.schema import prompt_messages
from middo.model.batching import budget_batches, pad_right
from middo.model.config import EmbedConfig
from middo.model.encode import Encoded, encode_chat, ensure_chat_template

LM_HEAD_CHUNK = 4096  # rows of hidden states sent through lm_head at once: bounds the [rows, vocab] logits
ENCODE_CHUNK = 16_384
"""Samples tokenised at a time. Their token lists (about 40 bytes a token in Python) are held while they run, so
memory does not grow with the number of samples; sorting by length within this many pads about as little as
sorting all of them."""


@dataclass
class ForwardResult:
    """Per-sample results in the input order (`ids[i]` is the sample of row i)."""

    ids: list[str]
    loss: np.ndarray  # float64 [N]: mean NLL over assistant tokens (NaN if a sample has none left)
    n_tokens: np.ndarray  # int64 [N]: assistant tokens scored
    embeddings: np.ndarray | None  # float32 [N, d]: mean last-layer hidden state over the pooled prompt tokens
    truncated: int  # samples cut to fit the context
    truncated_mask: np.ndarray  # bool [N]: which samples were cut
    embed_fallbacks: int = 0  # samples whose pooled text was not found: their whole prompt was averaged


def context_length(model: PreTrainedModel, max_length: int | None = None) -> int:
    """`max_length` if given, else the model's position limit."""
    limit = getattr(model.config, "max_position_embeddings", None) or 2048
    return min(max_length, limit) if max_length else limit


def body_and_head(model: PreTrainedModel) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The transformer body (returns last-layer states only) and the output projection."""
    return getattr(model, model.base_model_prefix), model.get_output_embeddings()


def encode_samples(
    tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict], max_length: int, chat_template: str | None = None,
    pooling: EmbedConfig = EmbedConfig(),
) -> list[Encoded]:
    """Tokenise samples (dicts with `id` and `messages`) with the chat template."""
    ensure_chat_template(tokenizer, chat_template)
    return [encode_chat(tokenizer, s["id"], list(s["messages"]), max_length, pooling) for s in samples]


def causal_states(body: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Last-layer states of right-padded rows.

    No attention mask on purpose: under causal attention a real token only sees earlier positions, and right padding
    puts every pad after the real tokens, so real-token states are exact; without a mask SDPA takes its fused causal
    kernel (~25% faster on CPU). Pad positions hold garbage and are never read.
    """
    return body(input_ids=ids).last_hidden_state


def token_nll(head: torch.nn.Module, states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL of each label from its state, in fp32, through lm_head in chunks of rows."""
    pieces = [
        F.cross_entropy(head(states[i : i + LM_HEAD_CHUNK]).float(), labels[i : i + LM_HEAD_CHUNK], reduction="none")
        for i in range(0, len(labels), LM_HEAD_CHUNK)
    ]
    return torch.cat(pieces) if pieces else torch.zeros(0, device=states.device)


@torch.inference_mode()
def forward_batch(model: PreTrainedModel, batch: list[Encoded], pad_id: int, embed: bool):
    """(nll sums [B], token counts [B], prompt embeddings [B, d] or None) for one padded batch."""
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    ids = pad_right([row.input_ids for row in batch], pad_id).to(device)
    hidden = causal_states(body, ids)
    # token t is predicted from the state at t-1: score only assistant targets, so lm_head sees few rows
    targets = pad_right([row.assistant_mask for row in batch], False).to(device)[:, 1:]
    rows, cols = targets.nonzero(as_tuple=True)
    states = hidden[:, :-1][rows, cols]
    labels = ids[:, 1:][rows, cols]
    nll = token_nll(head, states, labels)
    sums = torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, nll.double())
    counts = torch.bincount(rows, minlength=len(batch))
    vectors = None
    if embed:
        pooled = pad_right([row.embed_mask for row in batch], False).to(device).float()
        summed = torch.bmm(pooled[:, None, :], hidden.float())[:, 0]  # fp32 sums, no copy in fp32
        vectors = summed / pooled.sum(dim=1).clamp(min=1)[:, None]
    return sums.cpu(), counts.cpu(), None if vectors is None else vectors.cpu()


def score_forward(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[dict],
    token_budget: int,
    embed: bool = True,
    max_length: int | None = None,
    chat_template: str | None = None,
    progress: bool = True,
    pooling: EmbedConfig = EmbedConfig(),
) -> ForwardResult:
    """Mean assistant-token NLL per sample and (if `embed`) the prompt embedding over the tokens `pooling` names,
    from one pass (`pooling.pool: raw` takes the embeddings from a second pass over the user text alone).

    Samples are tokenised `ENCODE_CHUNK` at a time, sorted by length and batched under `token_budget` tokens
    (batch size x longest); results come back in the input order. Samples longer than the context lose prompt
    tokens from the left (counted).
    """
    n = len(samples)
    loss, n_tokens = np.full(n, np.nan, dtype=np.float64), np.zeros(n, dtype=np.int64)
    truncated_mask = np.zeros(n, dtype=bool)
    embeddings = np.zeros((n, model.config.hidden_size), dtype=np.float32) if embed else None
    ids: list[str] = []
    fallbacks = 0
    limit = context_length(model, max_length)
    chunks = range(0, n, ENCODE_CHUNK)
    for number, start in enumerate(chunks, 1):
        label = "forward" if len(chunks) == 1 else f"forward (chunk {number}/{len(chunks)})"
        part = _score_chunk(model, tokenizer, samples[start : start + ENCODE_CHUNK], token_budget, embed, limit,
                            chat_template, progress, pooling, label)
        end = start + len(part.ids)
        ids += part.ids
        loss[start:end], n_tokens[start:end], truncated_mask[start:end] = part.loss, part.n_tokens, part.truncated_mask
        if embeddings is not None:
            embeddings[start:end] = part.embeddings
        fallbacks += part.embed_fallbacks
    return ForwardResult(ids, loss, n_tokens, embeddings, int(truncated_mask.sum()), truncated_mask, fallbacks)


def _score_chunk(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict],
                 token_budget: int, embed: bool, limit: int, chat_template: str | None, progress: bool,
                 pooling: EmbedConfig, label: str) -> ForwardResult:
    """`score_forward` of samples tokenised together."""
    encoded = encode_samples(tokenizer, samples, limit, chat_template, pooling)
    in_pass = embed and pooling.pool != "raw"
    loss, n_tokens, embeddings = _run(model, tokenizer, encoded, token_budget, in_pass, progress, label)
    if embed and not in_pass:
        raw = raw_encodings(tokenizer, samples, limit, pooling.system)
        embeddings = _run(model, tokenizer, raw, token_budget, True, progress, "embed (raw text)")[2]
    truncated_mask = np.array([row.truncated for row in encoded], dtype=bool)
    return ForwardResult(
        ids=[row.id for row in encoded],
        loss=loss,
        n_tokens=n_tokens,
        embeddings=embeddings,
        truncated=int(truncated_mask.sum()),
        truncated_mask=truncated_mask,
        embed_fallbacks=sum(row.embed_fallback for row in encoded) if in_pass else 0,
    )


def raw_encodings(tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict], max_length: int,
                  system: bool) -> list[Encoded]:
    """The user text of each sample (its user turns, and its own system message if `system`), tokenised without a
    chat template, every token pooled: the reference's raw-text embedding input. Cut at `max_length` tokens."""
    roles = {"user", "system"} if system else {"user"}
    rows = []
    for sample in samples:
        turns = [m["content"] for m in prompt_messages(list(sample["messages"])) if m["role"] in roles]
        ids = tokenizer("\n\n".join(turns), add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id or 0]
        kept = ids[:max_length]
        rows.append(Encoded(sample["id"], kept, [False] * len(kept), len(kept), len(ids) > max_length,
                            [True] * len(kept)))
    return rows


def _run(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoded: list[Encoded], token_budget: int,
         embed: bool, progress: bool, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(mean NLL [N], assistant tokens [N], embeddings [N, d] or None) of encoded rows, length-batched."""
    n = len(encoded)
    loss = np.full(n, np.nan, dtype=np.float64)
    n_tokens = np.zeros(n, dtype=np.int64)
    embeddings = np.zeros((n, model.config.hidden_size), dtype=np.float32) if embed else None
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with tqdm(total=sum(map(len, encoded)), desc=label, unit="tok", disable=not progress) as bar:
        for batch in budget_batches([len(row) for row in encoded], token_budget):
            sums, counts, vectors = forward_batch(model, [encoded[i] for i in batch], pad_id, embed)
            for slot, index in enumerate(batch):
                n_tokens[index] = int(counts[slot])
                if counts[slot]:
                    loss[index] = float(sums[slot]) / int(counts[slot])
                if embeddings is not None:
                    embeddings[index] = vectors[slot].numpy()
            bar.update(sum(len(encoded[i]) for i in batch))
    return loss, n_tokens, embeddings


def nll_forward(model, tokenizer, samples, token_budget, **kwargs) -> ForwardResult:
    """Loss-only pass (no embeddings): per-sample mean assistant-token NLL, e.g. under the base model."""
    return score_forward(model, tokenizer, samples, token_budget, embed=False, **kwargs)
