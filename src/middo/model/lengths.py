"""Token lengths of samples under the base model's tokenizer and chat template, and what `model.max_length` cuts.

The lengths are those of the encoder that train and score use (template markup included), so "truncated" here is
the count the stages' metrics would report after the run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from middo.errors import InputError
from middo.model.config import ModelConfig
from middo.model.encode import encode_chat, ensure_chat_template
from middo.model.load import split_gguf

QUANTILES = {"min": 0.0, "p10": 0.1, "median": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}


def load_tokenizer(config: ModelConfig) -> PreTrainedTokenizerBase:
    """The tokenizer of `config.base` (a model dir, hub id or .gguf file) with its chat template set."""
    source, gguf_file = split_gguf(config.base, config.gguf_file)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=config.trust_remote_code, **extra)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer of {config.base!r}: {exc}; pass a local model dir, a .gguf "
                         "file or a hub id available offline") from exc
    ensure_chat_template(tokenizer, config.chat_template)
    return tokenizer


def token_lengths(tokenizer: PreTrainedTokenizerBase, samples: Iterable[dict]) -> np.ndarray:
    """Uncut token count of each sample (dicts with `id` and `messages`), chat template included."""
    return np.array([len(encode_chat(tokenizer, s["id"], list(s["messages"]), sys.maxsize)) for s in samples])


def length_report(lengths: np.ndarray, max_length: int) -> dict:
    """Distribution of `lengths` and how many exceed `max_length` (those lose tokens in every model stage)."""
    if not len(lengths):
        return {"samples": 0, "max_length": max_length, "truncated": 0}
    cut = int((lengths > max_length).sum())
    spread = {name: int(np.quantile(lengths, q, method="nearest")) for name, q in QUANTILES.items()}
    return {"samples": len(lengths), "mean": round(float(lengths.mean()), 1), **spread, "max_length": max_length,
            "truncated": cut, "truncated_share": round(cut / len(lengths), 4)}


def describe(report: dict) -> str:
    """One line for a person: the spread and the truncation count."""
    if not report["samples"]:
        return "tokens: no samples"
    spread = ", ".join(f"{name} {report[name]}" for name in ("mean", "median", "p90", "p99", "max"))
    return (f"tokens per sample: {spread}; {report['truncated']} of {report['samples']} "
            f"({100 * report['truncated_share']:.1f}%) exceed model.max_length = {report['max_length']} and will "
            "be cut (raise model.max_length, or drop them)")
