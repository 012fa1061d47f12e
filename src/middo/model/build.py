"""Build a small Llama-architecture base model and its tokenizer from texts, saved like a hub model."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from middo.errors import InputError
from middo.log import get_logger
from middo.model.tokenizer import train_tokenizer

log = get_logger(__name__)


@dataclass(frozen=True)
class ModelSize:
    """Shape of a built base model."""

    vocab_size: int  # target BPE vocabulary (smaller if the texts do not support it)
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    max_positions: int  # RoPE has no position parameters; this only bounds the context


SIZES = {
    "tiny": ModelSize(2048, 128, 384, 3, 4, 1024),  # ~0.8M parameters: the CPU demo and tests
    "small": ModelSize(4096, 256, 768, 5, 4, 1024),  # ~4.6M parameters: needs more steps than a CPU demo has
}


def read_texts(paths: Sequence[str | Path]) -> Iterator[str]:
    """Lines of plain-text files, or every message content of Parquet sample files."""
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"{path}: no such text file; pass existing .txt or dataset .parquet files")
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path, columns=["messages"])
            for messages in frame["messages"].to_list():
                yield from (message["content"] for message in messages)
            continue
        with path.open(encoding="utf-8") as handle:
            yield from (line.rstrip("\n") for line in handle if line.strip())


def init_base_model(output_dir: str | Path, texts: Sequence[str | Path], size: str = "tiny", seed: int = 0) -> Path:
    """Train a tokenizer on the text files `texts`, build a randomly initialised Llama of `size`, save both.

    The directory loads with `from_pretrained` (model and tokenizer) exactly like a hub model.
    """
    if size not in SIZES:
        raise InputError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    shape = SIZES[size]
    tokenizer = train_tokenizer(read_texts(texts), shape.vocab_size)
    if len(tokenizer) < 300:
        raise InputError(f"texts {list(map(str, texts))} are empty or too small to train a tokenizer on")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=shape.max_positions,
        tie_word_embeddings=True,  # halves the parameters of a small model
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    model.generation_config.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"size": size, "parameters": n_params, "vocab_size": len(tokenizer), "shape": asdict(shape), "seed": seed}
    (output_dir / "middo_build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("built %s base model (%d parameters, vocab %d) in %s", size, n_params, len(tokenizer), output_dir)
    return output_dir
