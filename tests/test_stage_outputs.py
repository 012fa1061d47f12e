"""Every stage writes all its outputs or none; an output path that cannot be written is a message, not a traceback."""

from __future__ import annotations

import dataclasses
import importlib
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, stage_error
from typer.testing import CliRunner

from middo.cli.main import app
from middo.config import field_docs, load_params
from middo.errors import ConfigError
from middo.outputs import staged_outputs, staging_path
from middo.pipeline.build import build_pipeline

FIXTURES = Path(__file__).parent / "fixtures" / "data"
STAGED_KINDS = ("prepare", "pretrain", "score", "cluster", "judge", "select", "refine", "eval")
"""Every stage but train, whose checkpoints must outlive a failure (docs/design.md, "All outputs or none")."""


def pipeline_outputs(kind: str) -> set[str]:
    """The options of a stage's command whose values dvc.yaml lists as outs, metrics or plots."""
    params = load_params(REPO_ROOT / "params.yaml")
    stages = build_pipeline(1, params)["stages"]
    stage = stages[kind] if kind in stages else stages[f"{kind}-1"]
    written = set()
    for key in ("outs", "metrics", "plots"):
        written |= {next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(key, [])}
    words = shlex.split(stage["cmd"])
    return {words[i].removeprefix("--").replace("-", "_") for i in range(len(words) - 1)
            if words[i].startswith("--") and words[i + 1] in written}


@pytest.mark.parametrize("kind", STAGED_KINDS)
def test_each_stage_stages_every_output_it_writes(kind):
    main = importlib.import_module(f"stages.{kind}").main
    declared = set(main.outputs) | set(main.output_dirs)
    assert pipeline_outputs(kind) <= declared
    paths_cls = main.__wrapped__.__annotations__["paths"]
    paths_cls = getattr(importlib.import_module(f"stages.{kind}"), paths_cls)
    fields = {field.name for field in dataclasses.fields(paths_cls)}
    to_write = {name for name, doc in field_docs(paths_cls).items() if "to write" in doc or name == "embeddings"}
    assert declared <= fields and to_write - {"embeddings"} <= declared


@dataclasses.dataclass(frozen=True)
class Two:
    first: Path
    second: Path
    optional: Path | None = None


def test_a_failure_leaves_no_output_and_keeps_the_old_ones(tmp_path):
    paths = Two(tmp_path / "a.json", tmp_path / "sub" / "b.json")
    paths.first.write_text("old")
    with pytest.raises(RuntimeError), staged_outputs(paths, ("first", "second", "optional")) as staged:
        staged.first.write_text("new")
        raise RuntimeError("the stage failed after writing one output")
    assert paths.first.read_text() == "old" and not paths.second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    staging_path(paths.first).write_text("left by a killed run")
    with staged_outputs(paths, ("first",), ("second",)) as staged:
        assert not staged.first.exists()
        staged.first.write_text("new")
        staged.second.mkdir(parents=True)
        (staged.second / "x").write_text("x")
    assert paths.first.read_text() == "new" and (paths.second / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "sub"]


def write_params(tmp_path: Path, seed: str, eval_input: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"seed": seed, "eval": eval_input}}), encoding="utf-8")
    return path


def test_prepare_with_a_bad_eval_input_writes_nothing(tmp_path, capsys):
    from stages import prepare

    bad = tmp_path / "eval.jsonl"
    bad.write_text('{"instruction": "Q", "output": "A"}\n{not json\n', encoding="utf-8")
    params = write_params(tmp_path, str(FIXTURES / "alpaca.json"), str(bad))
    out = tmp_path / "data"
    args = ["--output", str(out / "r0" / "dataset.parquet"), "--eval-output", str(out / "eval.parquet"),
            "--metrics", str(out / "r0" / "prepare.json"), "--params", str(params)]
    assert "eval.jsonl line 2" in stage_error(capsys, prepare.main, args)
    assert [p for p in out.rglob("*") if p.is_file()] == []
    prepare.main(args[:-2] + ["--params", str(write_params(tmp_path, str(FIXTURES / "alpaca.json"),
                                                           str(FIXTURES / "openai.jsonl")))])
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["dataset.parquet", "eval.parquet",
                                                                    "prepare.json"]


def test_an_output_that_is_a_directory_is_a_message(tmp_path, capsys):
    from stages import prepare

    params = write_params(tmp_path, str(FIXTURES / "alpaca.json"), str(FIXTURES / "openai.jsonl"))
    (tmp_path / "taken").mkdir()
    args = ["--output", str(tmp_path / "taken"), "--eval-output", str(tmp_path / "eval.parquet"),
            "--metrics", str(tmp_path / "prepare.json"), "--params", str(params)]
    message = stage_error(capsys, prepare.main, args)
    assert "--output" in message and "is a directory" in message
    result = CliRunner().invoke(app, ["ingest", str(FIXTURES / "alpaca.json"), "--output", str(tmp_path / "taken")])
    assert result.exit_code == 1 and "is a directory" in result.output and "Traceback" not in result.output
    assert CliRunner().invoke(app, ["ingest", str(FIXTURES / "alpaca.json"), "-o", str(tmp_path / "d.parquet")]
                              ).exit_code == 0
    result = CliRunner().invoke(app, ["export", str(tmp_path / "d.parquet"), "--output", str(tmp_path / "taken"),
                                      "--format", "openai"])
    assert result.exit_code == 1 and "is a directory" in result.output, result.output


def test_check_file_target_names_the_option(tmp_path):
    from middo.outputs import check_dir_target, check_file_target

    with pytest.raises(ConfigError, match="--plot .*is a directory"):
        check_file_target(tmp_path, "--plot")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_dir_target(tmp_path / "f")


def test_a_finished_stage_logs_its_seconds_and_peak_memory(tmp_path, caplog):
    import re

    from stages import prepare

    params = write_params(tmp_path, str(FIXTURES / "alpaca.json"), str(FIXTURES / "openai.jsonl"))
    args = ["--output", str(tmp_path / "d.parquet"), "--eval-output", str(tmp_path / "e.parquet"),
            "--metrics", str(tmp_path / "prepare.json"), "--params", str(params)]
    with caplog.at_level("INFO", logger="middo"):
        prepare.main(args)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stage ")]
    assert len(lines) == 1, lines
    found = re.fullmatch(r"stage prepare: (\d+\.\d) s, peak RSS ([\d,]+) MiB", lines[0])
    assert found, lines[0]
    # This test process holds torch and polars: its peak is tens of MiB at least, and never more than the machine.
    assert 20 <= int(found[2].replace(",", "")) < 1_000_000
