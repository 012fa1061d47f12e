"""One shape for every stage script: its paths parsed into a typed paths object, params loaded, one call into the
library, its outputs written all or none (`middo.outputs`), and a `MiddoError` turned into one line on stderr and
exit code 1.

```python
@stage_main(ScorePaths, __doc__, outputs=("output", "metrics"), output_dirs=("embeddings",))
def main(paths: ScorePaths, params: dict) -> None:
    run_score(paths, section(ModelConfig, params, "model"), section(ScoreConfig, params, "score"))
```

Each field of the paths dataclass is an option (`--name`, `_` as `-`): required unless it has a default, its type
from the annotation (`Path`, `str`, `int`, a tuple for several values), its help from the field's docstring.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import resource
import sys
import time
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from middo.config import field_docs, load_params
from middo.errors import MiddoError
from middo.log import get_logger
from middo.outputs import launched_rank, staged_outputs

P = TypeVar("P")
log = get_logger("middo.stage")


def stage_main(paths_cls: type[P], doc: str | None, outputs: tuple[str, ...] = (),
               output_dirs: tuple[str, ...] = ()) -> Callable[[Callable[[P, dict], Any]], Callable[..., None]]:
    """Decorate a stage's `body(paths, params)`: the result is `main(argv=None)`, the script's entry point.

    `outputs` and `output_dirs` name the paths fields the stage writes (files, directories): the body gets staging
    paths for them, moved into place only when it returns (`middo.outputs.staged_outputs`); under a data-parallel
    launcher only process 0 moves them (`middo.outputs.launched_rank`).
    """

    def decorate(body: Callable[[P, dict], Any]) -> Callable[..., None]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> None:
            parser = stage_parser(paths_cls, doc)
            args = {name: tuple(value) if isinstance(value, list) else value
                    for name, value in vars(parser.parse_args(argv)).items()}
            params_path = args.pop("params")
            started = time.perf_counter()
            try:
                with staged_outputs(paths_cls(**args), outputs, output_dirs, writer=launched_rank() == 0) as paths:
                    body(paths, load_params(params_path))
            except MiddoError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(1) from exc
            log.info("%s", usage_line(Path(body.__code__.co_filename).stem, time.perf_counter() - started))

        main.outputs, main.output_dirs = outputs, output_dirs  # type: ignore[attr-defined]  # for the tests
        return main

    return decorate


def usage_line(name: str, seconds: float) -> str:
    """`stage NAME: S s, peak RSS M MiB`: the stage's wall time and the peak resident memory of this process and of
    the processes it waited for (a launcher's workers), for sizing a machine."""
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = max(self_kib, children_kib) / 1024
    rank = launched_rank()
    where = f" (rank {rank})" if rank else ""
    return f"stage {name}{where}: {seconds:.1f} s, peak RSS {peak_mib:,.0f} MiB"


def stage_parser(paths_cls: type, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of a paths dataclass, plus `--params`."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    docs = field_docs(paths_cls)
    hints = typing.get_type_hints(paths_cls)
    for field in dataclasses.fields(paths_cls):
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        kind, many = _option_type(hints[field.name])
        options: dict[str, Any] = {"type": kind, "help": docs.get(field.name, ""), "required": required}
        if many:
            options["nargs"] = "+"
        if not required:
            options["default"] = field.default
        parser.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, **options)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def _option_type(hint: Any) -> tuple[type, bool]:
    """(value type, several values?) of an annotation such as `Path | None` or `tuple[str, ...]`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return _option_type(typing.get_args(hint)[0])[0], True
    if hint in (Path, str, int):
        return hint, False
    raise TypeError(f"stage paths field of type {hint!r}: use Path, str, int or a tuple of them")

