"""`middo init`: scaffold a new project (git + DVC repo, params.yaml, dvc.yaml, ingested data, stage scripts).

The stage scripts are copied into the project, so the project's dvc.yaml runs `python -m stages.<name>` exactly like
the middo repo does; they are thin and import the installed `middo`. They come from the source checkout's `stages/`
(an editable install) or from `<prefix>/share/middo/stages`, where the wheel installs them (pyproject `data-files`).
The DVC cache links outputs instead of copying them (`DVC_CACHE_TYPE`), and git ignores `checkpoints/`.
The project's data is ingested once here (early, clear errors) and written as OpenAI-chat JSONL files that the
`prepare` stage reads: `data/seed.jsonl` and `data/eval.jsonl` (given with --eval, else held out of --data).

The project is portable: params.yaml and dvc.yaml hold no absolute path. The data files and a local base model (and
a local teacher) are tracked by DVC (`dvc add`; a model dir is copied once into the DVC cache and linked at
`models/base`, `models/teacher`), so `git clone` plus `dvc pull` rebuilds the workspace elsewhere, and new weights
at that path invalidate the stages that read them. A hub id stays a params value. Init validates every section and
the teacher before it writes anything, and a failure removes what it had made.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import yaml

import middo
from middo.config import section
from middo.data.config import DataConfig
from middo.data.ingest import ingest
from middo.data.schema import read_samples, sample_meta
from middo.errors import ConfigError, InputError
from middo.model.config import ModelConfig
from middo.pipeline.build import build_pipeline
from middo.pipeline.config import LoopConfig
from middo.pipeline.params_file import render_params
from middo.pipeline.project import EVAL_FILE, SEED_FILE, ProjectSpec, check_params, project_overlay
from middo.pipeline.unroll import render_pipeline

GITIGNORE = "/.middo-cache/\n__pycache__/\n/report.html\n/checkpoints/\n"
DVC_CACHE_TYPE = "hardlink,symlink"
"""`cache.type` of the project's DVC repo: an output is a link into `.dvc/cache`, not a second copy of a model dir
(hard links within one file system, symbolic links across them); docs/design.md, "Caching"."""
DVCIGNORE = "__pycache__/\n*.pyc\n.middo-cache/\n"


@dataclass(frozen=True)
class InitResult:
    """The created project and what its inputs look like."""

    root: Path
    ingest: dict[str, str]
    """`seed` (and `eval` when given) -> the ingestion summary line."""
    tokens: dict | None
    """`middo.model.lengths.length_report` of the seed set, or None when the tokenizer could not be loaded."""
    note: str | None = None
    """Why `tokens` is None."""


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


def init_project(directory: str | Path, spec: ProjectSpec) -> InitResult:
    """Create the project at `directory` (absent or empty); a failure removes what was made."""
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root}: directory is not empty; choose a new directory for the project")
    scripts = stage_scripts_dir()
    overlay = project_overlay(spec, root)
    text = render_params(overlay)
    params = yaml.safe_load(text)
    check_params(params, overlay)
    made = next((path for path in reversed([root, *root.parents]) if not path.exists()), None)
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _populate(root, spec, scripts, text)
    except BaseException:
        _clear(root, made)
        raise


def _populate(root: Path, spec: ProjectSpec, scripts: Path, text: str) -> InitResult:
    params = yaml.safe_load(text)
    data = section(DataConfig, params, "data")
    ingest_lines, seed = _write_data(root, spec, data)
    tokens, note = _token_report(seed, section(ModelConfig, params, "model"), spec.model)
    (root / "stages").mkdir()
    for script in sorted(scripts.glob("*.py")):
        shutil.copy2(script, root / "stages" / script.name)
    (root / "params.yaml").write_text(text, encoding="utf-8")
    rounds = section(LoopConfig, params, "loop").rounds
    pipeline = build_pipeline(rounds, params, package_dir=None)
    (root / "dvc.yaml").write_text(render_pipeline(pipeline, rounds), encoding="utf-8")
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    _run(["git", "init", "-q"], root)
    _dvc(["init", "-q"], root)
    _dvc(["config", "cache.type", DVC_CACHE_TYPE], root)
    (root / ".dvcignore").write_text(DVCIGNORE, encoding="utf-8")
    _track_inputs(root, spec, params)
    return InitResult(root, ingest_lines, tokens, note)


def _track_inputs(root: Path, spec: ProjectSpec, params: dict) -> None:
    """`dvc add` the data files and the models copied in (each copied once, into the DVC cache)."""
    copies = {params["model"]["base"]: spec.model}
    if spec.teacher_backend == "local" and spec.teacher_model:
        copies[params["teacher"]["model"]] = spec.teacher_model
    for target, source in copies.items():
        if spec.copy_models and Path(source).expanduser().exists():
            (root / "models").mkdir(exist_ok=True)  # `dvc add -o` needs the parent dir
            _dvc(["add", "-q", str(Path(source).expanduser().resolve()), "-o", target], root)
    _dvc(["add", "-q", SEED_FILE, EVAL_FILE], root)


def _token_report(seed: pl.DataFrame, model: ModelConfig, source: str) -> tuple[dict | None, str | None]:
    """Token lengths of the seed set under the base model's tokenizer; a hub model that cannot be reached gives a
    note instead (a local model that cannot be read is an error)."""
    from middo.model.lengths import length_report, load_tokenizer, token_lengths

    local = replace(model, base=str(Path(source).expanduser()) if Path(source).expanduser().exists() else source)
    try:
        tokenizer = load_tokenizer(local)
    except InputError as exc:
        if Path(local.base).exists():
            raise
        return None, f"{exc}; run `middo stats data/seed.jsonl --params params.yaml` once the model is reachable"
    return length_report(token_lengths(tokenizer, seed.iter_rows(named=True)), model.max_length), None


def _clear(root: Path, made: Path | None) -> None:
    """Remove what init made: the first directory it created (`made`), or the contents of `root` when that was there
    (empty) before."""
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
        return
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink()


def _write_data(root: Path, spec: ProjectSpec, config: DataConfig) -> tuple[dict[str, str], pl.DataFrame]:
    lines = {}
    with tempfile.TemporaryDirectory() as tmp:
        seed, lines["seed"] = _ingested(spec.data, Path(tmp) / "seed.parquet", config)
        if spec.eval_data:
            held_out, lines["eval"] = _ingested(spec.eval_data, Path(tmp) / "eval.parquet", config)
        else:
            if seed.height <= spec.eval_size:
                raise InputError(f"{spec.data}: {seed.height} samples cannot spare {spec.eval_size} for evaluation; "
                                 "pass --eval PATH or a smaller --eval-size")
            # ids are hashes of the content, so the lowest ids are a fixed pseudo-random subset
            held_out = seed.sort("id").head(spec.eval_size)
            seed = seed.filter(~pl.col("id").is_in(held_out["id"].to_list()))
            lines["eval"] = f"{held_out.height} samples held out of the seed set"
    _write_chat_jsonl(seed, root / SEED_FILE)
    _write_chat_jsonl(held_out, root / EVAL_FILE)
    return lines, seed


def _ingested(spec: str, output: Path, config: DataConfig) -> tuple[pl.DataFrame, str]:
    report = ingest([spec], output, config.format, config.source, config.on_error, config.policy)
    return read_samples(output), report.summary()


def _write_chat_jsonl(frame: pl.DataFrame, path: Path) -> None:
    """One OpenAI-chat row per sample: `messages` plus the fields kept in `meta` (ingesting it gives the same ids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in frame.sort("id").select("id", "messages", "meta").iter_rows(named=True):
            extra = sample_meta(row["meta"], row["id"])
            handle.write(json.dumps({**extra, "messages": row["messages"]}, ensure_ascii=False) + "\n")


def _dvc(args: list[str], cwd: Path) -> None:
    _run([sys.executable, "-m", "dvc", *args], cwd)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(f"`{' '.join(command)}` failed in {cwd}: {result.stderr.strip()}; is it installed?")
