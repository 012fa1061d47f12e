"""Teacher backends beyond the built-in ones: plugins register a factory under the entry-point group `middo.teachers`.

A package adds a backend by declaring, in its pyproject.toml,

```toml
[project.entry-points."middo.teachers"]
mybackend = "mypackage.teacher:make_teacher"    # called with the `teacher` section (TeacherConfig)
```

and a project selects it with `teacher.backend: mybackend` (its own settings go under `teacher.options`).
The core never imports a plugin; `register_backend` adds one in-process (tests, notebooks).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from middo.errors import ConfigError
from middo.teacher.config import BUILTIN_BACKENDS, TeacherConfig
from middo.teacher.types import Teacher

ENTRY_POINT_GROUP = "middo.teachers"
TeacherFactory = Callable[[TeacherConfig], Teacher]
_registered: dict[str, TeacherFactory] = {}


def register_backend(name: str, factory: TeacherFactory) -> None:
    """Make `teacher.backend: <name>` build its teacher with `factory(cfg)` in this process."""
    if name in BUILTIN_BACKENDS:
        raise ConfigError(f"teacher backend {name!r} is built in; register the plugin under another name")
    _registered[name] = factory


def available_backends() -> list[str]:
    """Built-in backends, then every registered or installed plugin backend, sorted."""
    plugins = set(_registered) | {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
    return [*BUILTIN_BACKENDS, *sorted(plugins - set(BUILTIN_BACKENDS))]


def plugin_factory(name: str) -> TeacherFactory:
    """The factory of plugin backend `name`: registered in-process first, else its installed entry point."""
    if name in _registered:
        return _registered[name]
    points = [point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name == name]
    if not points:
        raise ConfigError(
            f"teacher.backend = {name!r} is not a known backend (available: {', '.join(available_backends())}); "
            f"use `openai` or `local`, or install the package that registers {name!r} under the entry-point group "
            f"{ENTRY_POINT_GROUP!r}"
        )
    try:
        return points[0].load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"teacher backend {name!r} ({points[0].value}) cannot be loaded: {exc}; reinstall the "
                          "package that provides it") from exc
