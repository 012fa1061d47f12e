"""Write a commented params.yaml from the config dataclasses: one section per class, a comment per field."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any

import yaml

from middo.pipeline.specs import STAGE_SPECS, config_class

SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "middo.data.config:DataConfig"),
    ("model", "middo.model.config:ModelConfig"),
    ("pretrain", "middo.model.config:PretrainConfig"),
    ("train", "middo.model.config:TrainConfig"),
    ("score", "middo.signals.config:ScoreConfig"),
    ("cluster", "middo.signals.config:ClusterConfig"),
    ("judge", "middo.signals.config:JudgeConfig"),
    ("select", "middo.selection.config:SelectConfig"),
    ("refine", "middo.refine.config:RefineConfig"),
    ("teacher", "middo.teacher.config:TeacherConfig"),
    ("eval", "middo.model.config:EvalConfig"),
    ("loop", "middo.pipeline.config:LoopConfig"),
)
"""Every params.yaml section in file order, with the dataclass that reads it."""
WIDTH = 119
HEADER = """\
# middo parameters. Each section is read by the stages named above it (their dvc.yaml `params:` list exactly the
# keys they read), so changing `select.*` re-runs select and what follows, never the forward passes.
# `model.base: models/base` (the offline demo) adds a `pretrain` stage that builds that model from `loop.corpus`;
# any other value (a local path or a hub id) is used as it is. After changing `loop.*`, `model.base` or
# `data.seed`/`data.eval`, run `middo unroll` to regenerate dvc.yaml (`middo unroll --sync-params` also refreshes
# this file after an upgrade: your values are kept, new fields appear at their defaults).
"""


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal after each field), first line only."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if is_field and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def readers(name: str) -> list[str]:
    """Stage kinds that read params section `name`."""
    return [kind for kind, spec in STAGE_SPECS.items() if any(section == name for _, section in spec.sections)]


def render_params(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """params.yaml text: every field of every section at its default, replaced by `overrides[section][key]`."""
    overrides = overrides or {}
    chunks = [HEADER]
    for name, target in SECTIONS:
        cls = config_class(target)
        values = {f.name: _default(f) for f in dataclasses.fields(cls)}
        unknown = set(overrides.get(name, {})) - set(values)
        if unknown:
            raise KeyError(f"{name}: no such fields {sorted(unknown)}")
        values.update(overrides.get(name, {}))
        cls(**values)  # the written values must load
        doc = " ".join((cls.__doc__ or name).split())
        used_by = ", ".join(readers(name)) or "`middo unroll` only"
        lines = ["", *textwrap.wrap(doc, WIDTH, initial_indent="# ", subsequent_indent="# ")]
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


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise KeyError(f"{field.name} has no default; give it one so params.yaml can be generated")


def _scalar(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()


def sync_params(current: dict[str, Any]) -> tuple[str, list[str]]:
    """params.yaml text that keeps the values of `current` for fields that still exist, adds new fields at their
    defaults and refreshes the comments; also returns the dotted keys dropped because no dataclass reads them."""
    overrides: dict[str, dict[str, Any]] = {}
    dropped = [name for name in current if name not in dict(SECTIONS)]
    for name, target in SECTIONS:
        known = {f.name for f in dataclasses.fields(config_class(target))}
        values = current.get(name) or {}
        overrides[name] = {key: value for key, value in values.items() if key in known}
        dropped += [f"{name}.{key}" for key in values if key not in known]
    return render_params(overrides), dropped
