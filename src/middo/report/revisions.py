"""One side of a comparison: the workspace, or a git revision or DVC experiment read through DVC's API.

At a revision nothing is checked out: DVC reads git-tracked files from that commit and DVC outputs from the local
cache, or from the default remote when they are not cached (`dvc.api.read`). An experiment's name works wherever a
revision does (`dvc exp show` lists them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from middo.config import section
from middo.data.schema import validate_samples
from middo.errors import InputError
from middo.pipeline.config import LoopConfig


@dataclass(frozen=True)
class Side:
    """Where one side's files come from: `project` as it is on disk (`rev` None), or `project` at `rev`."""

    project: Path
    rev: str | None = None

    @property
    def label(self) -> str:
        """How this side is named in output: `workspace` or the revision."""
        return "workspace" if self.rev is None else self.rev

    def read_bytes(self, path: str, stage_hint: str) -> bytes:
        """The bytes of `path` (relative to the project) on this side; `stage_hint` says what would make it."""
        if self.rev is None:
            local = self.project / path
            if not local.is_file():
                raise InputError(f"{local}: not found; {stage_hint}")
            return local.read_bytes()
        return _read_at_revision(self.project, path, self.rev)

    def read_optional(self, path: str) -> bytes | None:
        """The bytes of `path` on this side, or None when it cannot be had (a report shows it as missing)."""
        try:
            return self.read_bytes(path, "")
        except InputError:
            return None

    def round_spec(self, spec: str) -> str:
        """`spec` with `last` replaced by this side's last round (`loop.rounds` of its params.yaml)."""
        if spec != "last":
            return spec
        params = yaml.safe_load(self.read_bytes("params.yaml", "run this in a middo project or pass --project"))
        return str(section(LoopConfig, params or {}, "loop").rounds)

    def dataset(self, spec: str) -> pl.DataFrame:
        """A round number (`2`: `data/r2/dataset.parquet`) or a dataset file path, validated against the schema."""
        path = f"data/r{int(spec)}/dataset.parquet" if spec.isdigit() else spec
        hint = "run `dvc repro` to build that round" if spec.isdigit() else "pass a dataset Parquet file"
        frame = pl.read_parquet(io.BytesIO(self.read_bytes(path, hint)))
        return validate_samples(frame, where=f"{path} ({self.label})")

    def table(self, path: str) -> pl.DataFrame:
        """A Parquet table (e.g. `data/r1/flags.parquet`) on this side."""
        return pl.read_parquet(io.BytesIO(self.read_bytes(path, "run `dvc repro` to build it")))


def _read_at_revision(project: Path, path: str, rev: str) -> bytes:
    import dvc.api
    from dvc.exceptions import DvcException, PathMissingError
    from dvc.scm import RevError

    try:
        return dvc.api.read(path, repo=str(project), rev=rev, mode="rb")
    except RevError as exc:
        raise InputError(f"--rev {rev}: no git revision or DVC experiment of that name in {project} ({exc}); "
                         "see `git log` and `dvc exp show`") from exc
    except (FileNotFoundError, PathMissingError, DvcException) as exc:
        if _locked_output(project, path, rev):
            raise InputError(f"{path} at {rev} is neither in the local DVC cache nor on a remote ({exc}); fetch it "
                             f"with `dvc pull` / `dvc exp pull <remote> {rev}`, or re-run that revision") from exc
        raise InputError(f"{path} does not exist at {rev}: no stage of that revision's dvc.lock wrote it (was the "
                         "stage run and committed there?)") from exc


def _locked_output(project: Path, path: str, rev: str) -> bool:
    """True when `path` is an output recorded in the dvc.lock of `rev` (so its content exists somewhere)."""
    import dvc.api
    import yaml
    from dvc.exceptions import DvcException

    try:
        lock = yaml.safe_load(dvc.api.read("dvc.lock", repo=str(project), rev=rev)) or {}
    except (DvcException, FileNotFoundError, yaml.YAMLError):  # no readable lock there: nothing was recorded
        return False
    outs = [out.get("path") for stage in (lock.get("stages") or {}).values() for out in stage.get("outs") or []]
    return any(path == out or path.startswith(f"{out}/") for out in outs)
