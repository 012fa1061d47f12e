"""What a new project's params.yaml says: presets, the recipe, `middo init`'s flags and `--set`, then its paths.

`project_overlay` turns a `ProjectSpec` into the overlay `render_params` writes; `check_params` refuses, before
anything is written, a project that could not run as it is (a section that does not load, no teacher). A local
model becomes a path in the project (`models/base`, `models/teacher`; a `.gguf` file keeps its name), or with
`copy_models` off a path relative to the project; a hub id stays as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from middo.config import section
from middo.errors import ConfigError, InputError
from middo.model.load import looks_local
from middo.pipeline.params_file import SECTIONS
from middo.pipeline.presets import PRESETS, RECIPES, Overlay, lookup, merge, parse_set
from middo.teacher.config import TeacherConfig
from middo.teacher.registry import available_backends

SEED_FILE, EVAL_FILE = "data/seed.jsonl", "data/eval.jsonl"
MODEL_DIR, TEACHER_DIR = "models/base", "models/teacher"
NO_TEACHER = (
    "no teacher: pass --teacher-url URL --teacher-model NAME for an OpenAI-compatible endpoint (vLLM, SGLang, a paid "
    "API; https://api.openai.com/v1 for OpenAI), or --teacher-backend local --teacher-model PATH for a local model"
)


@dataclass(frozen=True)
class ProjectSpec:
    """What `middo init` was asked for: inputs, the teacher, the judge, the recipe, presets and `--set` values."""

    data: str
    model: str
    eval_data: str | None = None
    eval_size: int = 50
    teacher_url: str | None = None
    teacher_model: str | None = None
    rounds: int | None = None
    teacher_backend: str | None = None
    """null: params' default (`openai`)."""
    judge_mode: str | None = None
    recipe: str = "full"
    presets: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    """`section.key=value` overrides, applied last."""
    on_error: str | None = None
    """`fail` or `skip` for `data.on_error` (null: the params' value, `fail` unless a preset or `--set` says)."""
    copy_models: bool = True
    """Bring a local base (and local teacher) model into the project under DVC (`dvc add`); off: refer to it where
    it is, by a path relative to the project."""


def project_overlay(spec: ProjectSpec, root: Path) -> Overlay:
    """params.yaml values that differ from the defaults: presets, recipe, flags, `--set`, then the project's paths."""
    settings = parse_set(list(spec.settings))
    fixed = {"model.base": "--model", "data.seed": "--data", "data.eval": "--eval"}
    for key, flag in fixed.items():
        section_name, name = key.split(".")
        if name in settings.get(section_name, {}):
            raise ConfigError(f"--set {key}: use {flag} instead")
    presets = [lookup(name, PRESETS, "preset").params for name in spec.presets]
    recipe = lookup(spec.recipe, RECIPES, "recipe").params
    paths = {"model": {"base": model_param(spec.model, MODEL_DIR, root, spec.copy_models)},
             "data": {"seed": SEED_FILE, "eval": EVAL_FILE}}
    return merge(*presets, recipe, _flags(spec, root), settings, paths)


def _flags(spec: ProjectSpec, root: Path) -> Overlay:
    teacher: dict = {"backend": spec.teacher_backend} if spec.teacher_backend else {}
    if spec.teacher_url:
        teacher["base_url"] = spec.teacher_url
    if spec.teacher_model:
        local = spec.teacher_backend == "local"
        teacher["model"] = model_param(spec.teacher_model, TEACHER_DIR, root, spec.copy_models) if local else (
            spec.teacher_model)
    overlay: Overlay = {"teacher": teacher, "data": {"on_error": spec.on_error} if spec.on_error else {}}
    if spec.judge_mode:
        overlay["judge"] = {"mode": spec.judge_mode}
    if spec.rounds:
        overlay["loop"] = {"rounds": spec.rounds}
    return overlay


def model_param(source: str, in_project: str, root: Path, copy: bool) -> str:
    """The params value for a model: its place in the project (copied), its path relative to the project, or a hub
    id as it is. A `.gguf` file keeps its name under `models/`."""
    path = Path(source).expanduser()
    if not path.exists():
        if looks_local(source):
            raise InputError(f"{source}: no such model dir or file; pass a local model dir, a .gguf file or a hub id")
        return source
    if not copy:
        return os.path.relpath(path.resolve(), root.resolve())
    return f"models/{path.name}" if path.is_file() else in_project


def check_params(params: dict, overlay: Overlay) -> None:
    """Every section loads, and the teacher is one that can run: the project needs no editing before `dvc repro`."""
    for name, cls in SECTIONS:
        if name in params:
            section(cls, params, name)
    teacher = section(TeacherConfig, params, "teacher")
    if teacher.backend == "openai" and not teacher.base_url:
        raise ConfigError(NO_TEACHER)
    if teacher.backend == "local" and "model" not in overlay.get("teacher", {}):
        raise ConfigError("--teacher-backend local needs --teacher-model: a local model dir, .gguf file or hub id")
    if teacher.backend not in available_backends():
        raise ConfigError(f"--teacher-backend {teacher.backend!r} is not installed; choose one of "
                          f"{', '.join(available_backends())}")
