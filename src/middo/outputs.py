"""All of a stage's outputs or none: each is written under a hidden staging name and moved into place at the end.

A stage that fails (an error, Ctrl-C) leaves no output behind, not even the ones it finished before failing, so
DVC never sees a half-written stage and a rerun starts clean. A staging name left by a killed run is removed when
the stage next starts.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from middo.errors import ConfigError

P = TypeVar("P")


RANK_VARIABLES = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
"""Where launchers put a process's rank (torchrun and accelerate: RANK; MPI launchers: the others), as accelerate
reads them."""


def launched_rank() -> int:
    """This process's rank as its launcher set it (0 without a launcher), read without starting a process group:
    under a data-parallel launcher only rank 0 writes outputs."""
    return next((int(os.environ[name]) for name in RANK_VARIABLES if os.environ.get(name)), 0)


def staging_path(path: Path) -> Path:
    """Where `path` is written until the stage succeeds: a hidden sibling, on the same file system."""
    return path.with_name(f".{path.name}.partial")


def check_file_target(path: str | Path, option: str = "--output") -> Path:
    """`path` as a Path; a ConfigError when it names an existing directory (a file is to be written there)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory, and a file is written there; name a file (inside it or "
                          "elsewhere), not a directory")
    return path


def check_dir_target(path: str | Path, option: str = "--output") -> Path:
    """`path` as a Path; a ConfigError when it names an existing file (a directory is to be written there)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file, and a directory is written there; remove it or name "
                          "another path")
    return path


@contextmanager
def staged_outputs(paths: P, files: tuple[str, ...] = (), dirs: tuple[str, ...] = (),
                   writer: bool = True) -> Iterator[P]:
    """`paths` with the fields named in `files` and `dirs` (None values skipped) moved to staging names.

    On a clean exit every staged output that was written replaces its final path; on any exception all of them are
    removed and the final paths are left as they were. `writer` False (a data-parallel process other than process
    0, which writes nothing) gets the same staging names but neither clears nor moves them: process 0 does.
    """
    targets = {name: _target(paths, name, is_dir=name in dirs) for name in (*files, *dirs)}
    targets = {name: path for name, path in targets.items() if path is not None}
    staged = {name: staging_path(path) for name, path in targets.items()}
    if not writer:
        yield dataclasses.replace(paths, **staged)
        return
    for path in staged.values():
        _remove(path)  # left by a killed run
    try:
        yield dataclasses.replace(paths, **staged)
    except BaseException:
        for path in staged.values():
            _remove(path)
        raise
    for name, path in staged.items():
        if path.exists() or path.is_symlink():
            _remove(targets[name])
            os.replace(path, targets[name])


def _target(paths: object, name: str, is_dir: bool) -> Path | None:
    value = getattr(paths, name)
    if value is None:
        return None
    option = f"--{name.replace('_', '-')}"
    return check_dir_target(value, option) if is_dir else check_file_target(value, option)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
