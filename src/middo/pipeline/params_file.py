"""Write a commented params.yaml from the config dataclasses: one section per class, a comment per field."""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import yaml

from middo.config import field_docs
from middo.data.config import DataConfig
from middo.errors import ConfigError
from middo.model.config import EmbedConfig, EvalConfig, ModelConfig, PretrainConfig, TrainConfig
from middo.pipeline.config import LoopConfig
from middo.pipeline.specs import STAGE_SPECS, UNTRACKED_PARAMS
from middo.refine.config import RefineConfig
from middo.selection.config import SelectConfig
from middo.signals.config import ClusterConfig, JudgeConfig, ScoreConfig
from middo.teacher.config import TeacherConfig

SECTIONS: tuple[tuple[str, type], ...] = (
    ("data", DataConfig),
    ("model", ModelConfig),
    ("pretrain", PretrainConfig),
    ("train", TrainConfig),
    ("score", ScoreConfig),
    ("embed", EmbedConfig),
    ("cluster", ClusterConfig),
    ("judge", JudgeConfig),
    ("select", SelectConfig),
    ("refine", RefineConfig),
    ("teacher", TeacherConfig),
    ("eval", EvalConfig),
    ("loop", LoopConfig),
)
"""Every params.yaml section in file order, with the dataclass that reads it."""
OPTIONAL_SECTIONS = ("pretrain",)
"""Sections written only when given: `pretrain` makes the pipeline build `model.base` itself (the offline demo)."""
WIDTH = 119
HEADER = """\
# middo parameters. Each section is read by the stages named above it (their dvc.yaml `params:` list exactly the
# keys they read), so changing `select.*` re-runs select and what follows, never the forward passes.
# A `pretrain` section adds a stage that builds `model.base` from a config and its corpus (the offline demo);
# without it `model.base` (a local path or a hub id) is used as it is. After changing `loop.*`, `model.base`,
# `pretrain` or `data.seed`/`data.eval`, run `middo unroll` to regenerate dvc.yaml (`middo unroll --sync-params`
# also refreshes this file after an upgrade: your values are kept, new fields appear at their defaults).
"""


def readers(name: str) -> list[str]:
    """Stage kinds that read params section `name`."""
    return [kind for kind, spec in STAGE_SPECS.items() if any(section == name for _, section in spec.sections)]


def render_params(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """params.yaml text: every field of every section at its default, replaced by `overrides[section][key]`.

    Required fields (no default) must be in `overrides`; optional sections are written only when overridden.
    """
    overrides = overrides or {}
    chunks = [HEADER]
    for name, cls in SECTIONS:
        if name in OPTIONAL_SECTIONS and name not in overrides:
            continue
        given = overrides.get(name, {})
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise KeyError(f"{name}: no such fields {sorted(unknown)}")
        values = {f.name: given[f.name] if f.name in given else _default(f, name) for f in dataclasses.fields(cls)}
        cls(**values)  # the written values must load
        doc = " ".join((cls.__doc__ or name).split())
        absent = [kind for kind in OPTIONAL_SECTIONS if kind not in overrides]  # no such stage in this pipeline
        used_by = ", ".join(kind for kind in readers(name) if kind not in absent) or "`middo unroll` only"
        lines = ["", *textwrap.wrap(doc, WIDTH, initial_indent="# ", subsequent_indent="# ")]
        untracked = [key for key in values if f"{name}.{key}" in UNTRACKED_PARAMS]
        if untracked:
            note = f"Not tracked (cannot change a result, so changing one re-runs nothing): {', '.join(untracked)}."
            lines += textwrap.wrap(note, WIDTH, initial_indent="# ", subsequent_indent="# ")
        lines += [f"# Read by: {used_by}.", f"{name}:"]
        docs = field_docs(cls)
        for key, value in values.items():
            line = f"  {key}: {_scalar(value)}"
            if key in docs and len(line) + len(docs[key]) + 4 <= WIDTH:
                line += f"  # {docs[key]}"
            elif key in docs:
                lines += textwrap.wrap(docs[key], WIDTH, initial_indent="  # ", subsequent_indent="  # ")
            lines.append(line)
        chunks.append("\n".join(lines) + "\n")
    return "".join(chunks)


def _default(field: dataclasses.Field, section_name: str) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise ConfigError(f"params.yaml: {section_name}.{field.name} is required and not set; add it to the file")


def _scalar(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def sync_params(current: dict[str, Any]) -> tuple[str, list[str]]:
    """params.yaml text that keeps the values of `current` for fields that still exist, adds new fields at their
    defaults and refreshes the comments; also returns the dotted keys dropped because no dataclass reads them."""
    overrides: dict[str, dict[str, Any]] = {}
    dropped = [name for name in current if name not in dict(SECTIONS)]
    for name, cls in SECTIONS:
        if name in OPTIONAL_SECTIONS and name not in current:
            continue
        known = {f.name for f in dataclasses.fields(cls)}
        values = current.get(name) or {}
        overrides[name] = {key: value for key, value in values.items() if key in known}
        dropped += [f"{name}.{key}" for key in values if key not in known]
    return render_params(overrides), dropped
