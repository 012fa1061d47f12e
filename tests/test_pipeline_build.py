"""build_pipeline: the unrolled DAG is pure, DVC-valid, connected, and matches the golden dvc.yaml."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_pipeline_helpers import REPO

from middo.demo.params import DEMO_PARAMS

GOLDEN = Path(__file__).parent / "golden" / "dvc_2rounds.yaml"
DEMO = DEMO_PARAMS


def _build(rounds=2, params=DEMO, **kwargs):
    from middo.pipeline import build_pipeline

    return build_pipeline(rounds, params, **kwargs)


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_matches_golden_file():
    from middo.pipeline.unroll import render_pipeline

    text = render_pipeline(_build(), 2)
    if os.environ.get("MIDDO_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "regenerate with MIDDO_UPDATE_GOLDEN=1 if the change is meant"


def test_is_deterministic_and_does_not_mutate_params():
    params = {**DEMO_PARAMS, "loop": {"rounds": 5}}
    snapshot = yaml.safe_dump(params)
    assert _build(3, params) == _build(3, params)
    assert yaml.safe_dump(params) == snapshot


def test_stage_order_and_names_are_valid_for_dvc():
    from dvc.stage.utils import is_valid_name

    names = list(_build(2)["stages"])
    kinds = ["train", "score", "cluster", "judge", "select", "refine", "eval"]
    expected = ["prepare", "pretrain", "eval-0"] + [f"{k}-{r}" for r in (1, 2) for k in kinds] + ["train-3", "eval-3"]
    assert names == expected
    assert all(is_valid_name(name) for name in names)


def _resolved(value, params=DEMO):
    """`value` (a string, or a list/dict of them) with DVC's `${section.key}` replaced from `params`."""
    if isinstance(value, list):
        return [_resolved(item, params) for item in value]
    if isinstance(value, dict):
        return {_resolved(key, params): item for key, item in value.items()}
    return re.sub(r"\$\{(\w+)\.(\w+)\}", lambda m: str(params[m[1]][m[2]]), value)


def test_every_input_is_an_earlier_output_or_a_project_input():
    stages = _build(3)["stages"]
    produced: set[str] = set()
    inputs = {"data/demo/seed.jsonl", "data/demo/eval.jsonl", "data/demo/corpus.txt", *DEMO["eval"]["tasks"]}
    for name, stage in stages.items():
        for dep in _resolved(stage["deps"]):
            if dep.startswith("src/middo/"):
                assert (REPO / dep).is_dir(), f"{name}: code dep {dep} does not exist"
                continue
            if dep.startswith("stages/"):
                assert dep == f"stages/{name.split('-')[0]}.py"
                continue
            assert dep in produced or dep in inputs, f"{name} reads {dep} before any stage writes it"
        produced.update(_paths(_resolved(stage.get("outs", []))) + _paths(_resolved(stage["metrics"])))


def test_every_data_path_is_in_the_command_or_read_from_params():
    for name, stage in _build(2)["stages"].items():
        words = shlex.split(stage["cmd"])
        files = [d for d in stage["deps"] if not d.startswith(("stages/", "src/"))]
        if name == "prepare":  # its inputs are params (data.seed, data.eval), so `-S data.seed=...` is followed
            assert files == ["${data.seed}", "${data.eval}"] and {"data.seed", "data.eval"} <= set(stage["params"])
            files = []
        if name.startswith("eval-"):  # local lm-eval task dirs are read from eval.tasks, like prepare's inputs
            assert [f for f in files if f in DEMO["eval"]["tasks"]] == DEMO["eval"]["tasks"]
            assert "eval.tasks" in stage["params"]
            files = [f for f in files if f not in DEMO["eval"]["tasks"]]
        for path in files + _paths(stage.get("outs", [])) + _paths(stage["metrics"]) + _paths(stage.get("plots", [])):
            # a path inside a directory the command passes counts (the DVCLive dir's metrics.json and plots)
            passed = path in words or any(path.startswith(f"{word}/") for word in words)
            assert passed, f"{name}: {path} is declared but not passed in the command"
        assert words[:3] == ["python", "-m", f"stages.{name.split('-')[0]}"]
        for entry in stage["metrics"]:  # DVCLive's summary is kept between runs (it resumes with the checkpoints)
            path = next(iter(entry))
            assert entry[path] == ({"cache": False, "persist": True} if "/live/" in path else {"cache": False})


def _train_params(**train) -> dict:
    return {**DEMO, "train": {**DEMO["train"], **train}}


@pytest.mark.parametrize(
    ("train", "launcher", "extra_deps"),
    [
        ({}, "python", []),
        ({"launcher": "accelerate", "accelerate_config": "acc.yaml"}, "python", []),  # one process: no launcher
        ({"processes": 4}, "torchrun --standalone --nproc-per-node '${train.processes}'", []),
        (
            {"processes": 2, "launcher": "accelerate", "accelerate_config": "configs/ds.yaml"},
            "accelerate launch --config_file '${train.accelerate_config}' --num_processes '${train.processes}'",
            ["${train.accelerate_config}"],
        ),
        ({"launcher": "command", "launch_prefix": "srun -N 2 python"}, "${train.launch_prefix}", []),  # even 1
        ({"processes": 16, "launcher": "command", "launch_prefix": "srun python"}, "${train.launch_prefix}", []),
    ],
)
def test_train_runs_under_the_launcher_of_its_params(train, launcher, extra_deps):
    stages = _build(2, {**_train_params(**train), "judge": {**DEMO["judge"], "mode": "logits"}})["stages"]
    for r in (1, 2, 3):
        stage = stages[f"train-{r}"]
        assert stage["cmd"].startswith(f"{launcher} -m stages.train --data data/r{r - 1}/dataset.parquet ")
        assert [d for d in stage["deps"] if d.startswith("${train.")] == extra_deps
        assert {"train.processes", "train.launcher", "train.launch_prefix"} <= set(stage["params"])
    forward = {name: stage for name, stage in stages.items() if name.startswith(("score-", "judge-", "eval-"))}
    assert len(forward) == 2 * 2 + 4  # score and judge of rounds 1-2, eval of rounds 0-3
    for stage in forward.values():  # data parallel under the same launcher (middo.model.ranks)
        assert stage["cmd"].startswith(f"{launcher} -m stages.")
        assert [d for d in stage["deps"] if d.startswith("${train.")] == extra_deps
    others = [stage["cmd"] for name, stage in stages.items() if not name.startswith("train-") and name not in forward]
    assert all(cmd.startswith("python -m stages.") for cmd in others)


def test_a_judge_that_sends_requests_runs_as_one_process():
    params = {**_train_params(processes=4), "judge": {**DEMO["judge"], "mode": "openai"}}
    stages = _build(1, params)["stages"]
    assert stages["judge-1"]["cmd"].startswith("python -m stages.judge ")
    assert stages["score-1"]["cmd"].startswith("torchrun --standalone --nproc-per-node '${train.processes}' -m ")


def test_launcher_values_are_interpolated_by_dvc_at_run_time(tmp_path):
    """DVC renders `${train.*}` in the command from params.yaml, so `-S train.processes=8` needs no unroll."""
    from middo.pipeline.unroll import render_pipeline

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    cases = {
        "torchrun": ({"processes": 8}, "torchrun --standalone --nproc-per-node '8' -m stages.train"),
        "accelerate": ({"processes": 2, "launcher": "accelerate", "accelerate_config": "ds z2.yaml"},
                       "accelerate launch --config_file 'ds z2.yaml' --num_processes '2' -m stages.train"),
        "command": ({"processes": 16, "launcher": "command", "launch_prefix": "srun -N 2 torchrun --nnodes 2"},
                    "srun -N 2 torchrun --nnodes 2 -m stages.train"),
    }
    for kind, (train, rendered) in cases.items():
        params = _train_params(**train)
        (tmp_path / "dvc.yaml").write_text(render_pipeline(_build(1, params), 1), encoding="utf-8")
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
        script = ("from dvc.repo import Repo; s = Repo('.').stage.collect('train-1')[0]; "
                  "print(s.cmd); print(*(str(d.def_path) for d in s.deps), sep='\\n')")  # fmt: skip
        shown = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                               check=True).stdout.splitlines()  # fmt: skip
        assert shown[0].startswith(f"{rendered} --data data/r0/dataset.parquet --base 'models/base' "), kind
        assert ("ds z2.yaml" in shown[1:]) == (kind == "accelerate")


def test_train_reuses_the_previous_round_model_from_round_2():
    stages = _build(2)["stages"]
    assert "--reuse" not in stages["train-1"]["cmd"] and "models/r0" not in stages["train-1"]["deps"]
    for r in (2, 3):
        assert f"--reuse models/r{r - 1}" in stages[f"train-{r}"]["cmd"]
        assert f"models/r{r - 1}" in stages[f"train-{r}"]["deps"]


def test_checkpoints_and_dvclive_files_persist_outside_the_cache():
    stage = _build(1)["stages"]["train-2"]
    assert stage["outs"] == ["models/r2"]  # checkpoints: undeclared, so a clone without them is up to date
    assert stage["metrics"] == [{"data/r2/train.json": {"cache": False}},
                                {"data/r2/live/metrics.json": {"cache": False, "persist": True}}]  # fmt: skip
    assert stage["plots"] == [{"data/r2/live/plots/metrics": {"cache": False, "persist": True, "x": "step"}}]
    words = shlex.split(stage["cmd"])
    assert words[words.index("--checkpoints") + 1] == "checkpoints/r2" and words[words.index("--live") + 1] == \
        "data/r2/live"
    text = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/checkpoints" in text or "/checkpoints/" in text  # checkpoints are never committed to git


def test_score_reuses_previous_round_and_cache_is_not_an_output():
    stages = _build(2)["stages"]
    assert "--reuse" not in stages["score-1"]["cmd"]
    assert "data/r1/scores.parquet" in stages["score-2"]["deps"]
    assert "--reuse data/r1/scores.parquet" in stages["score-2"]["cmd"]
    outs = [p for s in stages.values() for p in _paths(s.get("outs", []))]
    assert not any(".middo-cache" in p for p in outs)
    assert stages["refine-2"]["cmd"].count("--round 2") == 1


def test_hub_base_model_has_no_pretrain_stage_and_no_base_dep():
    real = {"data": DEMO_PARAMS["data"], "model": {"base": "HuggingFaceTB/SmolLM2-135M"}}
    stages = _build(1, real)["stages"]
    assert "pretrain" not in stages
    assert "--base '${model.base}'" in stages["train-1"]["cmd"]  # DVC resolves it from params.yaml at run time
    assert all("${model.base}" not in s["deps"] for s in stages.values())
    assert list(stages)[-2:] == ["train-2", "eval-2"]


def test_a_pretrain_section_builds_model_base_and_the_stages_that_read_m0_depend_on_it():
    stages = _build(1, DEMO_PARAMS)["stages"]
    assert stages["pretrain"]["outs"] == ["${model.base}"] and "${pretrain.corpus}" in stages["pretrain"]["deps"]
    assert all("${model.base}" in stages[name]["deps"] for name in ("train-1", "score-1", "train-2"))
    assert "${model.base}" not in stages["judge-1"]["deps"]


def test_required_params_are_named_when_missing():
    from middo.errors import ConfigError

    with pytest.raises(ConfigError, match="model.base is required"):
        _build(1, {"data": DEMO_PARAMS["data"]})
    with pytest.raises(ConfigError, match="data.seed is required"):
        _build(1, {"model": {"base": "m"}})


def test_installed_library_has_no_source_deps_and_bad_rounds_fail():
    from middo.errors import ConfigError

    stages = _build(1, package_dir=None)["stages"]
    assert all(not d.startswith("src/") for s in stages.values() for d in s["deps"])
    for bad in (0, -1, True, "2"):
        with pytest.raises(ConfigError, match="rounds"):
            _build(bad)


def test_dvc_accepts_the_pipeline(tmp_path):
    from middo.pipeline.unroll import render_pipeline

    (tmp_path / "dvc.yaml").write_text(render_pipeline(_build(2), 2), encoding="utf-8")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(DEMO), encoding="utf-8")  # `${model.base}` resolves here
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    listed = subprocess.run([sys.executable, "-m", "dvc", "stage", "list"], cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(_build(2)["stages"])


def test_seed_inputs_come_from_params_and_local_ones_are_deps():
    params = {**DEMO, "data": {"seed": ["data/a.jsonl", "tatsu-lab/alpaca:train"], "eval": "data/eval_in.parquet"}}
    prepare = _build(1, params)["stages"]["prepare"]
    assert "data/a.jsonl" not in prepare["cmd"] and "data.seed" in prepare["params"]
    assert prepare["deps"][-2:] == ["data/a.jsonl", "${data.eval}"]  # a list is not interpolated, a hub id no dep
