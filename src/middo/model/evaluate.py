"""Held-out evaluation: mean assistant-token NLL, and greedy exact-match accuracy on checkable answers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.data.schema import prompt_messages
from middo.errors import InputError
from middo.model.batching import pad_left
from middo.model.config import EvalConfig
from middo.model.forward import context_length, nll_forward


def normalise(text: str) -> str:
    """Lower case with runs of whitespace collapsed: what exact match compares."""
    return " ".join(text.lower().split())


def meta_of(sample: dict) -> dict:
    """The sample's `meta` JSON as a dict (empty when absent or not an object)."""
    meta = sample.get("meta")
    if not meta:
        return {}
    try:
        parsed = json.loads(meta) if isinstance(meta, str) else meta
    except json.JSONDecodeError as exc:
        raise InputError(f"sample {sample['id']}: meta is not valid JSON ({exc})") from exc
    return parsed if isinstance(parsed, dict) else {}


def answer_of(sample: dict) -> str | None:
    """The checkable answer in the sample's `meta` JSON (`{"answer": ...}`), if any."""
    answer = meta_of(sample).get("answer")
    return None if answer is None else str(answer)


def accuracy_by_family(samples: Sequence[dict], hits: Sequence[bool]) -> dict[str, float]:
    """Exact match per `meta.family` (samples without one are left out); empty when no sample names a family."""
    per_family: dict[str, list[bool]] = {}
    for sample, hit in zip(samples, hits, strict=True):
        if (family := meta_of(sample).get("family")) is not None:
            per_family.setdefault(str(family), []).append(hit)
    return {family: sum(flags) / len(flags) for family, flags in sorted(per_family.items())}


def stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that end an assistant turn: the tokenizer's and model's eos, and ChatML's `<|im_end|>` if present."""
    configured = model.generation_config.eos_token_id
    ids = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if im_end is not None and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


@torch.inference_mode()
def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[dict]],
    max_new_tokens: int,
    batch_size: int,
    max_length: int,
    progress: bool = True,
) -> list[str]:
    """Greedy completions of chat prompts, batched by length with left padding; in the input order."""
    budget = max(1, max_length - max_new_tokens)
    encoded = [
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)[-budget:]
        for messages in prompts
    ]
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    stop_ids = stop_token_ids(model, tokenizer)
    outputs: list[str] = [""] * len(encoded)
    for start in tqdm(range(0, len(order), batch_size), desc="generate", disable=not progress):
        batch = order[start : start + batch_size]
        ids, attention = pad_left([encoded[index] for index in batch], pad_id)
        generated = model.generate(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=stop_ids,
        )
        for slot, index in enumerate(batch):
            outputs[index] = tokenizer.decode(generated[slot, ids.shape[1] :], skip_special_tokens=True).strip()
    return outputs


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[dict],
    config: EvalConfig,
    max_length: int | None = None,
    chat_template: str | None = None,
    progress: bool = True,
) -> dict:
    """Metrics of `model` on held-out `samples` (dicts with `id`, `messages`, optional `meta`)."""
    if not samples:
        raise InputError("evaluation set is empty; pass a dataset with at least one sample")
    result = nll_forward(model, tokenizer, samples, config.token_budget, max_length=max_length,
                         chat_template=chat_template, progress=progress)  # fmt: skip
    scored = result.n_tokens > 0
    total_tokens = int(result.n_tokens.sum())
    token_nll = float(np.sum(result.loss[scored] * result.n_tokens[scored]) / max(1, total_tokens))
    metrics = {
        "samples": len(samples),
        "nll": token_nll,
        "perplexity": math.exp(token_nll) if token_nll < 50 else float("inf"),
        "nll_sample_mean": float(np.mean(result.loss[scored])) if scored.any() else float("nan"),
        "assistant_tokens": total_tokens,
        "truncated": result.truncated,
    }
    checkable = [(sample, answer) for sample in samples if (answer := answer_of(sample)) is not None]
    metrics["answer_samples"] = len(checkable)
    if checkable:
        prompts = [prompt_messages(list(sample["messages"])) for sample, _ in checkable]
        predictions = generate_greedy(model, tokenizer, prompts, config.max_new_tokens, config.gen_batch_size,
                                      context_length(model, max_length), progress)  # fmt: skip
        hits = [normalise(pred) == normalise(answer) for pred, (_, answer) in zip(predictions, checkable, strict=True)]
        metrics["exact_match"] = sum(hits) / len(hits)
        if by_family := accuracy_by_family([sample for sample, _ in checkable], hits):
            metrics["exact_match_by_family"] = by_family
    else:
        metrics["exact_match"] = float("nan")
    return metrics
