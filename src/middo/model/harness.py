"""Benchmark tasks through lm-evaluation-harness (`lm-eval`): `eval.tasks` resolved, built and checked before the
model loads (`prepare_tasks`); `middo.model.harness_run` runs them.

A task is a registered name or group (`mmlu`, `gsm8k`) or a path: a YAML file, or a dir whose task (or group) YAMLs
all run. When every task is local, the harness runs with the hub switched off (`HF_HUB_OFFLINE`,
`HF_DATASETS_OFFLINE`), so a task whose data is not on disk fails with its name instead of downloading.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from middo.errors import ConfigError
from middo.model.config import EvalConfig

SCORED = ("loglikelihood", "loglikelihood_rolling", "multiple_choice")
"""Output types that need the model's log-probabilities of given text."""
CANNOT_SCORE = ("local-chat-completions",)
"""Backends without log-probabilities of given text (chat endpoints return generated text only)."""
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE")


@dataclass(frozen=True)
class TaskPlan:
    """What the harness is asked to run."""

    names: list[str]
    """Task or group names, in the order of `eval.tasks` (a dir contributes each of its tasks)."""
    include: list[Path]
    """Local dirs the task index reads besides the harness's own tasks."""
    registered: bool
    """Some task is one of the harness's own (its index must be read: a few seconds)."""

    @property
    def local(self) -> bool:
        """Every task is a local path, so the run needs no hub."""
        return not self.registered


def is_path(spec: str) -> bool:
    """A task given as a path (with a `/`, starting with `.` or `~`, or a YAML file name) rather than a task name."""
    return "/" in spec or spec.startswith((".", "~")) or spec.endswith((".yaml", ".yml"))


def plan_tasks(tasks: list[str]) -> TaskPlan:
    """Resolve local task paths to task names (the names are checked later, against the index)."""
    names: list[str] = []
    include: list[Path] = []
    for spec in tasks:
        if not is_path(spec):
            names.append(spec)
            continue
        path = Path(spec).expanduser()
        if not path.exists():
            raise ConfigError(f"eval.tasks: {spec}: no such task dir or YAML file; give a task name or a local path")
        folder = path if path.is_dir() else path.parent
        include.append(folder.resolve())
        names += local_task_names(path)
    return TaskPlan(names, include, registered=any(not is_path(spec) for spec in tasks))


def local_task_names(path: Path) -> list[str]:
    """The task (or group) names a YAML file or dir defines: a dir's groups if it has any, else its tasks."""
    files = [path] if path.is_file() else sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    configs = [config for file in files if isinstance(config := _read_task_yaml(file), dict)]
    groups = [c["group"] for c in configs if isinstance(c.get("group"), str) and not isinstance(c.get("task"), str)]
    tasks = [c["task"] for c in configs if isinstance(c.get("task"), str)]
    if not groups and not tasks:
        raise ConfigError(f"eval.tasks: {path}: no lm-eval task YAML (a file with a `task:` or `group:` key) "
                          "there; see lm-eval's docs/new_task_guide.md, or data/demo/tasks/middo_demo")  # fmt: skip
    return groups or tasks


class _TaskYamlLoader(yaml.SafeLoader):
    """Safe YAML that reads lm-eval's tags (`!function utils.f`) as plain strings, only to find the names."""


_TaskYamlLoader.add_multi_constructor("!", lambda loader, suffix, node: str(node.value))


def _read_task_yaml(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskYamlLoader)  # a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"eval.tasks: {path}: not a readable YAML file ({exc})") from exc


def task_manager(plan: TaskPlan, held_out: Path | None = None):
    """The harness's task index over `plan.include` (and its own tasks only when some task is one of them); the
    held-out set goes to each task's `custom_dataset` as `middo_held_out` (`middo.model.harness_tasks`)."""
    from lm_eval.tasks import TaskManager

    metadata = {"middo_held_out": str(held_out)} if held_out is not None else None
    manager = TaskManager(include_path=[str(p) for p in plan.include] or None, include_defaults=plan.registered,
                          metadata=metadata)  # fmt: skip
    unknown = [name for name in plan.names if name not in manager.all_tasks]
    if unknown:
        close = difflib.get_close_matches(unknown[0], manager.all_tasks, n=5, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else "; `lm-eval ls tasks` lists them"
        if Path(unknown[0]).exists():
            hint = f"; for the local dir write ./{unknown[0]}"
        raise ConfigError(f"eval.tasks: unknown lm-eval task {unknown[0]!r}{hint}")
    return manager


def load_tasks(manager, names: list[str], backend: str, offline: bool, unsafe_code: bool = False) -> list:
    """Build each task (reading its data) and check the backend can run it; the Task/Group objects, in order."""
    built = []
    for name in names:
        try:
            loaded = manager.load([name])
        except OSError as exc:
            where = " offline (every eval task is local, so the hub is off)" if offline else ""
            raise ConfigError(
                f"eval task {name!r}: its data could not be loaded{where}: {exc}. Point the task at local files: "
                "copy its YAML into a dir of your own with `dataset_path: json` and `dataset_kwargs: {data_files: "
                "{test: FILE}}` (or a `custom_dataset` function), and list that dir in eval.tasks"
            ) from exc
        except (ImportError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"eval task {name!r}: its YAML could not be built: {exc!r}") from exc
        check_backend(name, loaded["tasks"], backend)
        unsafe = sorted(task for task, obj in loaded["tasks"].items() if getattr(obj, "UNSAFE_CODE", False))
        if unsafe and not unsafe_code:
            raise ConfigError(f"eval task {name!r} runs the model's generated code ({', '.join(unsafe[:3])}); set "
                              "eval.unsafe_code: true to allow it, inside a sandbox only")  # fmt: skip
        group = loaded["groups"].get(name)
        built += [group] if group is not None else list(loaded["tasks"].values())
    return built


def check_backend(name: str, tasks: dict, backend: str) -> None:
    """Refuse tasks that need log-probabilities on a backend that cannot give them."""
    scored = sorted(task for task, obj in tasks.items() if obj.get_config("output_type") in SCORED)
    if scored and backend in CANNOT_SCORE:
        raise ConfigError(
            f"eval task {name!r} scores answers by loglikelihood ({', '.join(scored[:3])}), which backend {backend} "
            "cannot do; use eval.backend local-completions (a server that returns prompt logprobs, such as vLLM), "
            "vllm or hf, or drop the task"
        )


@dataclass(frozen=True)
class PreparedTasks:
    """`eval.tasks` built and checked, ready for a model."""

    manager: Any
    """The harness's TaskManager over the local task dirs (and its own tasks when any is named)."""
    built: list
    """Task and Group objects, data loaded, in the order of `eval.tasks`."""
    offline: bool
    """Every task is local: the harness runs with the hub off."""


def prepare_tasks(config: EvalConfig, held_out: Path | None = None) -> PreparedTasks:
    """Build `eval.tasks` and run every check that needs no model: names, YAML, data, backend, unsafe code.
    `held_out` is the stage's held-out set, offered to local tasks that read it (the demo's)."""
    if config.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise ConfigError("eval.backend is vllm but vllm is not installed; `pip install lm-eval[vllm]` or use hf")
    plan = plan_tasks(config.tasks)
    with hub_offline(plan.local):
        manager = task_manager(plan, held_out)
        built = load_tasks(manager, plan.names, config.backend, plan.local, config.unsafe_code)
    return PreparedTasks(manager, built, plan.local)


@contextlib.contextmanager
def hub_offline(enabled: bool) -> Iterator[None]:
    """Switch the hub off for datasets and huggingface_hub (env and their loaded constants), then restore."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved_env = {key: os.environ.get(key) for key in OFFLINE_ENV}
    targets = [(huggingface_hub.constants, "HF_HUB_OFFLINE"), (datasets.config, "HF_HUB_OFFLINE"),
               (datasets.config, "HF_DATASETS_OFFLINE")]  # fmt: skip
    saved = [(module, attr, getattr(module, attr, None)) for module, attr in targets]
    os.environ.update(dict.fromkeys(OFFLINE_ENV, "1"))
    for module, attr, _ in saved:
        setattr(module, attr, True)
    try:
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
