"""What each stage script reads: its params sections (config classes) and the library packages it imports.

This table is the single place `build_pipeline` learns a stage's `params:` and code `deps:`; the tests check it
against the stage scripts (`section(Cls, params, "name")` calls and transitive `middo` imports).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from middo.config import param_keys
from middo.errors import ConfigError


@dataclass(frozen=True)
class StageSpec:
    """The static facts of one stage kind."""

    sections: tuple[tuple[str, str], ...]
    """(`module:Class`, params section) pairs the stage script loads."""
    packages: tuple[str, ...]
    """Sub-packages of `middo` the stage imports (directly or through the library), as code deps."""


STAGE_SPECS: dict[str, StageSpec] = {
    "prepare": StageSpec((("middo.data.config:DataConfig", "data"),), ("data",)),
    "pretrain": StageSpec(
        (("middo.model.config:ModelConfig", "model"), ("middo.model.config:PretrainConfig", "pretrain")),
        ("model",),
    ),
    "train": StageSpec(
        (("middo.model.config:ModelConfig", "model"), ("middo.model.config:TrainConfig", "train")),
        ("data", "model"),
    ),
    "score": StageSpec(
        (("middo.model.config:ModelConfig", "model"), ("middo.signals.config:ScoreConfig", "score")),
        ("data", "model", "signals"),
    ),
    "cluster": StageSpec((("middo.signals.config:ClusterConfig", "cluster"),), ("signals",)),
    "judge": StageSpec(
        (
            ("middo.model.config:ModelConfig", "model"),
            ("middo.signals.config:JudgeConfig", "judge"),
            ("middo.teacher.config:TeacherConfig", "teacher"),
        ),
        ("data", "demo", "model", "refine", "signals", "teacher"),  # teacher -> demo (sim backend) -> refine
    ),
    "select": StageSpec((("middo.selection.config:SelectConfig", "select"),), ("data", "selection")),
    "refine": StageSpec(
        (
            ("middo.model.config:ModelConfig", "model"),
            ("middo.refine.config:RefineConfig", "refine"),
            ("middo.teacher.config:TeacherConfig", "teacher"),
            ("middo.signals.config:JudgeConfig", "judge"),
            ("middo.signals.config:ClusterConfig", "cluster"),
        ),
        ("data", "demo", "model", "refine", "signals", "teacher"),
    ),
    "eval": StageSpec(
        (("middo.model.config:ModelConfig", "model"), ("middo.model.config:EvalConfig", "eval")),
        ("data", "model"),
    ),
}


def config_class(target: str) -> type:
    """Import `module:Class`; a missing class is a ConfigError naming it (the stage's module is not built yet)."""
    module_name, _, class_name = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{target} cannot be imported ({exc}); reinstall middo (`pip install -e .`)") from exc


def stage_param_keys(kind: str) -> list[str]:
    """The dotted params.yaml keys a stage kind reads, in section order then field order."""
    keys: list[str] = []
    for target, name in STAGE_SPECS[kind].sections:
        keys.extend(param_keys(config_class(target), name))
    return keys
