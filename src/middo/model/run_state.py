"""What a train run is addressed by, and the state that lets it resume or be skipped.

A round model is addressed by a fingerprint of what it was trained on: the base model, the training samples'
messages in order, and every setting that changes the weights. A round whose fingerprint equals the previous round's
(refine accepted nothing, or changed only `meta`) reuses that model instead of retraining. The checkpoint directory
(a DVC `persist` output) remembers which fingerprint its checkpoints belong to, so a re-run after a kill resumes only
the run it was doing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from middo.model.config import ModelConfig, TrainConfig
from middo.model.sft import complete_checkpoint

RECORD = "middo_train.json"
"""File in a round model dir: the fingerprint of what it was trained on."""
STATE = "state.json"
"""File in a checkpoint dir: the fingerprint its checkpoints belong to."""
LAUNCH_ONLY = ("launcher", "accelerate_config", "launch_prefix", "save_steps")
"""Train settings that do not change the weights, left out of the fingerprint."""


def base_identity(base: str) -> dict:
    """What identifies the base model: its name, and for a local dir or file the names and sizes of its files and
    the content of its config.json (cheap, and changes whenever the weights are rebuilt or replaced)."""
    path = Path(base)
    if path.is_file():
        return {"base": base, "size": path.stat().st_size}
    if not path.is_dir():
        return {"base": base}
    files = {str(item.relative_to(path)): item.stat().st_size for item in sorted(path.rglob("*")) if item.is_file()}
    config = path / "config.json"
    return {"base": base, "files": files, "config": config.read_text(encoding="utf-8") if config.exists() else None}


def fingerprint(base: str, conversations: Iterable[list[dict]], config: TrainConfig, model_config: ModelConfig) -> str:
    """Hex digest of the base, the conversations in training order and the settings that change the weights."""
    digest = hashlib.sha256()
    train = {key: value for key, value in dataclasses.asdict(config).items() if key not in LAUNCH_ONLY}
    model = {key: value for key, value in dataclasses.asdict(model_config).items() if key not in ("base", "device")}
    settings = {"base": base_identity(base), "train": train, "model": model}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for messages in conversations:
        digest.update(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def read_record(model_dir: Path) -> dict | None:
    """The training record of a round model dir, if it has one."""
    try:
        return json.loads((model_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_record(model_dir: Path, key: str) -> None:
    """Write the training record into a finished model dir: its fingerprint only, so that the dir's content (and
    its DVC hash) depends on the weights and not on timings or on whether the run resumed."""
    (model_dir / RECORD).write_text(json.dumps({"fingerprint": key}) + "\n", encoding="utf-8")


def reusable(previous: Path | None, key: str) -> dict | None:
    """The record of `previous` when it was trained on exactly what this run would train on."""
    record = read_record(previous) if previous else None
    return record if record and record.get("fingerprint") == key else None


def link_tree(source: Path, target: Path) -> None:
    """Recreate `source` at `target`, hard-linking files (copying across file systems): no second copy on disk."""
    for item in sorted(source.rglob("*")):
        destination = target / item.relative_to(source)
        if item.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item, destination)
        except OSError:
            shutil.copy2(item, destination)


def resume_point(checkpoints: Path, key: str) -> Path | None:
    """The checkpoint to resume from: the newest complete one, if the directory belongs to this run."""
    try:
        state = json.loads((checkpoints / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return complete_checkpoint(checkpoints) if state.get("fingerprint") == key else None


def start_checkpoints(checkpoints: Path, key: str, resuming: bool) -> None:
    """Empty the checkpoint dir unless resuming, and mark it as this run's."""
    if not resuming and checkpoints.exists():
        shutil.rmtree(checkpoints)
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / STATE).write_text(json.dumps({"fingerprint": key}), encoding="utf-8")


def finish_checkpoints(checkpoints: Path, key: str) -> None:
    """Drop the checkpoints of a finished run (the model is saved); keep the marker so DVC finds its output."""
    for item in checkpoints.glob("checkpoint-*"):
        shutil.rmtree(item)
    (checkpoints / STATE).write_text(json.dumps({"fingerprint": key, "finished": True}), encoding="utf-8")
