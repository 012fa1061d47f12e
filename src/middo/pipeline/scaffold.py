"""`middo init`: scaffold a new project (git + DVC repo, params.yaml, dvc.yaml, ingested data, stage scripts).

The stage scripts are copied into the project, so the project's dvc.yaml runs `python -m stages.<name>` exactly like
the middo repo does; they are thin and import the installed `middo`. They come from the source checkout's `stages/`
(an editable install) or from `<prefix>/share/middo/stages`, where the wheel installs them (pyproject `data-files`).
The DVC cache links outputs instead of copying them (`DVC_CACHE_TYPE`), and git ignores `checkpoints/`.
The project's data is ingested once here (early, clear errors) and written as OpenAI-chat JSONL files that the
`prepare` stage reads: `data/seed.jsonl` and `data/eval.jsonl` (given with --eval, else held out of --data).
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

import middo
from middo.data.ingest import ingest
from middo.data.schema import read_samples, sample_meta
from middo.errors import ConfigError, InputError
from middo.pipeline.build import build_pipeline
from middo.pipeline.params_file import render_params
from middo.pipeline.unroll import render_pipeline

SEED_FILE, EVAL_FILE = "data/seed.jsonl", "data/eval.jsonl"
GITIGNORE = "/.middo-cache/\n__pycache__/\n/report.html\n/checkpoints/\n"
DVC_CACHE_TYPE = "hardlink,symlink"
"""`cache.type` of the project's DVC repo: an output is a link into `.dvc/cache`, not a second copy of a model dir
(hard links within one file system, symbolic links across them); docs/design.md, "Caching"."""
DVCIGNORE = "__pycache__/\n*.pyc\n.middo-cache/\n"


@dataclass(frozen=True)
class ProjectSpec:
    """What `middo init` was asked for."""

    data: str
    model: str
    eval_data: str | None = None
    eval_size: int = 50
    teacher_url: str | None = None
    teacher_model: str | None = None
    rounds: int = 2


def stage_script_candidates() -> list[Path]:
    """Where the stage scripts may be: the source checkout (next to `src/`), then the install's data dirs."""
    package = Path(middo.__file__).resolve()
    # <prefix>/lib/pythonX.Y/site-packages/middo/__init__.py -> <prefix>, for --prefix and --target-like installs
    install_prefix = package.parents[4] if len(package.parents) > 4 else package.parent
    prefixes = [install_prefix, sysconfig.get_path("data"), sys.prefix, site.getuserbase()]
    installed = [Path(prefix) / "share" / "middo" / "stages" for prefix in dict.fromkeys(map(str, prefixes))]
    return [package.parents[2] / "stages", *installed]


def stage_scripts_dir() -> Path:
    """The first candidate directory that holds the stage scripts."""
    candidates = stage_script_candidates()
    for candidate in candidates:
        if (candidate / "train.py").is_file():
            return candidate
    raise ConfigError(
        f"middo's stage scripts were not found (looked in {', '.join(map(str, candidates))}); reinstall middo with "
        "pip from a wheel or a source checkout (`pip install middo` or `pip install -e .`)"
    )


def init_project(directory: str | Path, spec: ProjectSpec) -> Path:
    """Create the project at `directory` (absent or empty) and return its path."""
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root}: directory is not empty; choose a new directory for the project")
    scripts = stage_scripts_dir()
    root.mkdir(parents=True, exist_ok=True)
    _write_data(root, spec)
    for script in sorted(scripts.glob("*.py")):
        (root / "stages").mkdir(exist_ok=True)
        shutil.copy2(script, root / "stages" / script.name)
    params_text = render_params(project_overrides(spec))
    (root / "params.yaml").write_text(params_text, encoding="utf-8")
    pipeline = build_pipeline(spec.rounds, yaml.safe_load(params_text), package_dir=None)
    (root / "dvc.yaml").write_text(render_pipeline(pipeline, spec.rounds), encoding="utf-8")
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    _run(["git", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "config", "cache.type", DVC_CACHE_TYPE], root)
    (root / ".dvcignore").write_text(DVCIGNORE, encoding="utf-8")
    return root


def project_overrides(spec: ProjectSpec) -> dict[str, dict]:
    """params.yaml values that differ from the dataclass defaults for a scaffolded project."""
    base = Path(spec.model)
    overrides: dict[str, dict] = {
        "model": {"base": str(base.resolve()) if base.exists() else spec.model},
        "data": {"seed": SEED_FILE, "eval": EVAL_FILE},
        "loop": {"rounds": spec.rounds},
    }
    if spec.teacher_url:
        overrides["teacher"] = {"backend": "openai", "base_url": spec.teacher_url, "model": spec.teacher_model}
    return overrides


def _write_data(root: Path, spec: ProjectSpec) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seed = _ingested(spec.data, Path(tmp) / "seed.parquet")
        if spec.eval_data:
            held_out = _ingested(spec.eval_data, Path(tmp) / "eval.parquet")
        else:
            if seed.height <= spec.eval_size:
                raise InputError(f"{spec.data}: {seed.height} samples cannot spare {spec.eval_size} for evaluation; "
                                 "pass --eval PATH or a smaller --eval-size")
            # ids are hashes of the content, so the lowest ids are a fixed pseudo-random subset
            held_out = seed.sort("id").head(spec.eval_size)
            seed = seed.filter(~pl.col("id").is_in(held_out["id"].to_list()))
    _write_chat_jsonl(seed, root / SEED_FILE)
    _write_chat_jsonl(held_out, root / EVAL_FILE)


def _ingested(spec: str, output: Path) -> pl.DataFrame:
    ingest([spec], output)
    return read_samples(output)


def _write_chat_jsonl(frame: pl.DataFrame, path: Path) -> None:
    """One OpenAI-chat row per sample: `messages` plus the fields kept in `meta` (ingesting it gives the same ids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in frame.sort("id").select("id", "messages", "meta").iter_rows(named=True):
            extra = sample_meta(row["meta"], row["id"])
            handle.write(json.dumps({**extra, "messages": row["messages"]}, ensure_ascii=False) + "\n")


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"`{' '.join(command)}` failed in {cwd}: {result.stderr.strip()}; is it installed?")
