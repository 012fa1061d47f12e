"""`middo init` for a user's own project: flags only, portable paths, inputs tracked by DVC, an early look at the
inputs, and nothing left behind by a failure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from middo.cli.main import app
from middo.errors import ConfigError
from middo.pipeline.params_file import SECTIONS, render_params
from middo.pipeline.presets import PRESETS, RECIPES, merge, parse_set

TEACHER = ["--teacher-url", "http://localhost:8000/v1", "--teacher-model", "qwen"]


def _invoke(args: list[str]):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture
def chats(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"Add {i} and {i + 1}."},
                          {"role": "assistant", "content": f"The sum is {2 * i + 1}."}]} for i in range(30)]
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "{not json\n", encoding="utf-8")
    return path


def _dvc(args: list[str], cwd) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_init_from_flags_only_writes_real_use_portable_params(tmp_path, chats, tiny_model_dir):
    project = tmp_path / "proj"
    result = _invoke(["init", project, "--data", chats, "--on-error", "skip", "--model", tiny_model_dir,
                      "--eval-size", "5", "--teacher-backend", "local", "--teacher-model", tiny_model_dir,
                      "--judge-mode", "openai", "--recipe", "lora", "--preset", "cpu-trial",
                      "--set", "train.lora.r=8", "--set", "model.max_length=16"])
    assert result.exit_code == 0, result.output
    text = (project / "params.yaml").read_text(encoding="utf-8")
    pipeline = (project / "dvc.yaml").read_text(encoding="utf-8")
    for content in (text, pipeline):  # the settings, not the comments
        settings = "\n".join(line.split("#")[0] for line in content.splitlines())
        for demo_only in ("pretrain", "backend: sim", "middo-sim", "data/demo", "error_rate", str(tmp_path)):
            assert demo_only not in settings, demo_only
    assert "Read by: train, score" in text  # no pretrain stage here
    params = yaml.safe_load(text)
    assert "pretrain" not in params
    assert params["model"] == {**params["model"], "base": "models/base", "max_length": 16}
    assert params["teacher"]["backend"] == "local" and params["teacher"]["model"] == "models/teacher"
    assert params["judge"]["mode"] == "openai" and params["data"]["on_error"] == "skip"
    assert params["train"]["lora"] == {"r": 8, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}
    assert params["train"]["lr"] == 2e-4 and params["loop"]["rounds"] == 1  # the lora recipe, the cpu-trial preset
    assert params["train"]["gradient_checkpointing"] is True  # the CPU preset keeps training memory bounded
    stages = yaml.safe_load(pipeline)["stages"]
    for name in ("train-1", "score-1", "refine-1", "eval-2"):
        assert "${model.base}" in stages[name]["deps"] or name.startswith(("refine", "eval")), name
    assert "${teacher.model}" in stages["refine-1"]["deps"] and "${teacher.model}" in stages["judge-1"]["deps"]
    assert "seed: 31 rows read, 30 samples kept" in result.output and "skipped: " in result.output
    assert "25 of 25 (100.0%) exceed model.max_length = 16" in result.output, result.output  # before any stage


def test_init_tracks_data_and_models_with_dvc_not_git(tmp_path, chats, tiny_model_dir):
    project = tmp_path / "proj"
    args = ["init", project, "--data", chats, "--on-error", "skip", "--model", tiny_model_dir, "--eval-size", "5"]
    assert _invoke([*args, *TEACHER]).exit_code == 0
    for tracked in ("data/seed.jsonl.dvc", "data/eval.jsonl.dvc", "models/base.dvc"):
        assert (project / tracked).is_file(), tracked
    assert (project / "models/base/config.json").is_file()
    ignored = subprocess.run(["git", "check-ignore", "data/seed.jsonl", "data/eval.jsonl", "models/base"],
                             cwd=project, capture_output=True, text=True).stdout.split()  # fmt: skip
    assert ignored == ["data/seed.jsonl", "data/eval.jsonl", "models/base"]  # in DVC, not in git
    assert (tiny_model_dir / "config.json").stat().st_mode & 0o200  # the user's own copy is left writable
    _dvc(["status"], project)  # the pipeline parses with its ${...} paths


def test_init_can_refer_to_a_model_in_place_by_a_relative_path(tmp_path, chats, tiny_model_dir):
    project = tmp_path / "work" / "proj"
    args = ["init", project, "--data", chats, "--on-error", "skip", "--model", tiny_model_dir, "--eval-size", "5",
            "--no-copy-models", *TEACHER]
    assert _invoke(args).exit_code == 0
    base = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))["model"]["base"]
    assert base.startswith("../") and (project / base).resolve() == tiny_model_dir.resolve()
    assert not (project / "models/base.dvc").exists()
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert "${model.base}" in stages["train-1"]["deps"]  # new weights there re-run training


def test_a_failed_init_leaves_nothing_behind(tmp_path, chats, monkeypatch):
    project = tmp_path / "new" / "proj"
    result = _invoke(["init", project, "--data", chats, "--model", "m/x", "--eval-size", "5", *TEACHER])
    assert result.exit_code == 1 and "--on-error skip" in result.output
    assert not (tmp_path / "new").exists()  # nor the parent it made
    empty = tmp_path / "empty"
    empty.mkdir()
    from middo.pipeline import scaffold

    def broken(*args):
        raise ConfigError("dvc add failed")

    monkeypatch.setattr(scaffold, "_track_inputs", broken)
    result = _invoke(["init", empty, "--data", chats, "--on-error", "skip", "--model", "m/x", "--eval-size", "5",
                      *TEACHER])
    assert result.exit_code == 1 and "dvc add failed" in result.output
    assert empty.is_dir() and not list(empty.iterdir())  # the directory the user made stays, empty


def test_init_names_the_missing_teacher_and_bad_settings_before_writing(tmp_path, chats):
    base = ["init", tmp_path / "p", "--data", chats, "--on-error", "skip", "--model", "m/x", "--eval-size", "5"]
    result = _invoke(base)
    assert result.exit_code == 1 and "--teacher-url URL --teacher-model NAME" in result.output
    result = _invoke([*base, "--teacher-backend", "local"])
    assert result.exit_code == 1 and "needs --teacher-model" in result.output
    result = _invoke([*base, "--teacher-backend", "nosuch", "--teacher-model", "x"])
    assert result.exit_code == 1 and "not installed" in result.output
    result = _invoke([*base, *TEACHER, "--set", "train.lr=-1"])
    assert result.exit_code == 1 and "train.lr" in result.output
    result = _invoke([*base, *TEACHER, "--preset", "nosuch"])
    assert result.exit_code == 1 and "cpu-trial" in result.output
    result = _invoke([*base, *TEACHER, "--set", "model.base=other"])
    assert result.exit_code == 1 and "use --model" in result.output
    assert not (tmp_path / "p").exists()


def test_a_hub_model_is_a_param_and_an_unreachable_tokenizer_is_a_note(tmp_path, chats, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    project = tmp_path / "p"
    result = _invoke(["init", project, "--data", chats, "--on-error", "skip", "--model", "nobody/none",
                      "--eval-size", "5", *TEACHER])
    assert result.exit_code == 0, result.output
    assert "token lengths not measured" in result.output and "middo stats" in result.output
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    assert params["model"]["base"] == "nobody/none"
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert "${model.base}" not in stages["train-1"]["deps"] and "model.base" in stages["train-1"]["params"]


@pytest.mark.parametrize("name", [*PRESETS, *RECIPES])
def test_every_preset_and_recipe_renders_params_that_load(name):
    from middo.config import section

    overlay = {**PRESETS, **RECIPES}[name].params
    params = yaml.safe_load(render_params(merge(overlay, {"model": {"base": "m/x"},
                                                          "data": {"seed": "s.jsonl", "eval": "e.jsonl"}})))
    for section_name, cls in SECTIONS:
        if section_name in params:
            section(cls, params, section_name)


def test_overlays_merge_key_by_key_and_set_reads_yaml_values():
    overlay = parse_set(["train.lr=1e-5", "train.lora.r=8", "teacher.options={a: 1}", "model.chat_template=chatml"])
    assert overlay == {"train": {"lr": 1e-5, "lora": {"r": 8}}, "teacher": {"options": {"a": 1}},
                       "model": {"chat_template": "chatml"}}
    merged = merge(RECIPES["lora"].params, overlay)
    assert merged["train"]["lora"]["r"] == 8 and merged["train"]["lora"]["alpha"] == 32
    assert RECIPES["lora"].params["train"]["lora"]["r"] == 16  # the recipe itself is untouched
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_set(["lr=1"])
