"""Saving a trained round model as users store one: safetensors in the training dtype, LoRA merged (adapter kept
beside it), no pickled files."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from trl import SFTTrainer

from middo.log import get_logger

log = get_logger(__name__)

PICKLED = ("training_args.bin",)
"""Files the trainer writes with pickle; removed from a saved model (middo loads nothing pickled)."""
ADAPTER_DIR = "adapter"


def drop_pickles(directory: Path) -> None:
    """Remove the trainer's pickled side files from a saved model dir."""
    for name in PICKLED:
        (directory / name).unlink(missing_ok=True)


def cast_weights(directory: Path, dtype: torch.dtype) -> None:
    """Rewrite every floating tensor of the safetensors files in `directory` as `dtype` (config.json follows)."""
    name = str(dtype).removeprefix("torch.")
    total = 0
    for path in sorted(directory.glob("*.safetensors")):
        tensors = load_file(path)
        tensors = {key: value.to(dtype) if value.is_floating_point() else value for key, value in tensors.items()}
        total += sum(value.numel() * value.element_size() for value in tensors.values())
        save_file(tensors, path, metadata={"format": "pt"})
    index = directory / "model.safetensors.index.json"
    if index.exists():
        content = json.loads(index.read_text(encoding="utf-8"))
        content.setdefault("metadata", {})["total_size"] = total
        index.write_text(json.dumps(content, indent=2), encoding="utf-8")
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = name
    config.pop("torch_dtype", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def saved_dtype(directory: Path) -> str | None:
    """The dtype config.json of a saved model names."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    return config.get("dtype") or config.get("torch_dtype")


def save_full(trainer: SFTTrainer, output: Path, dtype: torch.dtype) -> None:
    """Save a fully fine-tuned model (gathered from every process by the trainer) in `dtype`."""
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        drop_pickles(output)
        if saved_dtype(output) != str(dtype).removeprefix("torch."):
            cast_weights(output, dtype)


def save_merged(trainer: SFTTrainer, output: Path, base_loader, dtype: torch.dtype) -> None:
    """Save the LoRA adapter to `output/adapter` and the base with the adapter merged in to `output`, in `dtype`.

    The merge starts from a fresh copy of the base (`base_loader(dtype)` returns (model, tokenizer)), so it does not
    depend on how the training processes held the weights (DDP, FSDP or DeepSpeed shards).
    """
    from peft import PeftModel

    adapter = output / ADAPTER_DIR
    trainer.save_model(str(adapter))
    if not trainer.is_world_process_zero():
        return
    drop_pickles(adapter)
    base, tokenizer = base_loader(dtype)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    log.info("merged the adapter %s into %s", adapter, output)
