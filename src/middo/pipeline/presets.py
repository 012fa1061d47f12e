"""Named params overlays for `middo init`: presets, training recipes, flags and `--set`, merged in that order.

An overlay is `{section: {key: value}}`, the shape `render_params` takes. A preset is a named overlay with a line of
help; adding one is adding an entry to `PRESETS`. Later overlays win key by key, nested mappings (`train.lora`)
included, so `--recipe lora --set train.lora.r=8` keeps the recipe's other adapter settings.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from middo import reference
from middo.errors import ConfigError

Overlay = dict[str, dict[str, Any]]
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


@dataclass(frozen=True)
class Preset:
    """A named overlay of params."""

    help: str
    """One line for `middo init --help`."""
    params: Overlay = field(default_factory=dict)
    """The values it sets, by section."""


PRESETS: dict[str, Preset] = {
    "paper": Preset("the paper's 4096-token context (model.max_length); its recipe is the default",
                    {"model": {"max_length": 4096}}),
    # Gradient checkpointing stays on: without it a SmolLM2-135M LoRA at 4096-token micro-batches peaked at 14 GB
    # on a CPU (docs/real-model.md), with it at 2 GB (bench/train.py).
    "cpu-trial": Preset("a first look on a CPU: 512-token context, one round",
                        {"model": {"max_length": 512}, "loop": {"rounds": 1}}),
    "reference": Preset(reference.HELP, reference.REFERENCE),
}
"""Presets by name (`middo init --preset NAME`, repeatable, applied in order)."""

LORA = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}
RECIPES: dict[str, Preset] = {
    "full": Preset("full fine-tune, lr 2e-5, cosine, warmup 0.03, 1 epoch (the paper's; the defaults)"),
    # adapters train few weights from zero, so they take about ten times the full fine-tune's rate
    "lora": Preset("LoRA r 16 on every linear layer, lr 2e-4; the round model is merged",
                   {"train": {"lora": LORA, "lr": 2e-4}}),
    "qlora": Preset("LoRA on a 4-bit base (needs CUDA and bitsandbytes), lr 2e-4",
                    {"train": {"lora": {**LORA, "qlora": True}, "lr": 2e-4}}),
}
"""Training recipes (`middo init --recipe NAME`)."""


def lookup(name: str, table: dict[str, Preset], what: str) -> Preset:
    """The entry `name` of `table`; a ConfigError listing the known names otherwise."""
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; choose one of {', '.join(table)}")
    return table[name]


def merge(*overlays: Overlay) -> Overlay:
    """One overlay from several; later ones win key by key."""
    merged: Overlay = {}
    for overlay in overlays:
        _merge_into(merged, overlay)
    return merged


def _merge_into(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def parse_set(assignments: list[str]) -> Overlay:
    """`section.key=value` strings (value read as YAML; `train.lora.r=8` sets a nested key) as one overlay."""
    overlay: Overlay = {}
    for text in assignments:
        key, sep, raw = text.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {text!r}: write section.key=value, e.g. --set train.lr=1e-5")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc
        if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        for part in reversed(parts[1:]):
            value = {part: value}
        overlay = merge(overlay, {parts[0]: value})
    return overlay
