"""Pure helpers of bench/loop_value.py: arms as DVC experiment settings, the templated dvc.yaml, reading
`dvc exp show --json` and `dvc queue status`, and the result of one experiment."""

from __future__ import annotations

import math

import pytest

from bench import loop_value as lv

PARAMS = {
    "data": {"seed": "data/demo/seed.jsonl", "eval": "data/demo/eval.jsonl", "format": "auto"},
    "pretrain": {"corpus": "data/demo/corpus.txt", "max_steps": None},
    "train": {"epochs": 40, "seed": 3},
    "select": {"mode": "sigma"},
    "refine": {"gate": True},
    "teacher": {"backend": "sim", "options": {"error_rate": 0.1}},
    "loop": {"rounds": 2},
}


def test_suite_keys_are_found_by_value_wherever_they_live():
    assert lv.find_suite_keys(PARAMS) == {"seed": "data.seed", "eval": "data.eval", "corpus": "pretrain.corpus"}
    old_layout = {**PARAMS, "pretrain": {"max_steps": None}, "loop": {"rounds": 2, "corpus": "data/demo/corpus.txt"}}
    assert lv.find_suite_keys(old_layout)["corpus"] == "loop.corpus"
    with pytest.raises(SystemExit, match="data/demo/seed.jsonl"):
        lv.find_suite_keys({**PARAMS, "data": {"eval": "data/demo/eval.jsonl"}})


def test_overrides_and_rounds_go_into_the_baseline():
    keys = lv.find_suite_keys(PARAMS)
    overrides = lv.parse_overrides(["train.epochs=1", "pretrain.max_steps=5", "teacher.options.error_rate=0.3"])
    params = lv.base_params(PARAMS, overrides, 1, keys)
    assert params["train"]["epochs"] == 1 and params["pretrain"]["max_steps"] == 5
    assert params["teacher"]["options"]["error_rate"] == 0.3 and params["loop"]["rounds"] == 1
    assert PARAMS["train"]["epochs"] == 40  # not modified in place
    with pytest.raises(SystemExit, match="no such setting"):
        lv.base_params(PARAMS, {"train.nope": 1}, None, keys)
    with pytest.raises(SystemExit, match="per seed"):
        lv.base_params(PARAMS, {"data.seed": "x.jsonl"}, None, keys)
    with pytest.raises(SystemExit, match="section.key=value"):
        lv.parse_overrides(["epochs=1"])


def test_each_arm_maps_to_settings_and_a_target():
    keys = lv.find_suite_keys(PARAMS)
    suite = {"data.seed": "data/suites/s2/seed.jsonl", "data.eval": "data/suites/s2/eval.jsonl",
             "pretrain.corpus": "data/suites/s2/corpus.txt"}
    assert lv.exp_settings("middo", 2, PARAMS, keys) == suite
    assert lv.exp_settings("random", 2, PARAMS, keys) == {**suite, "select.mode": "random"}
    assert lv.exp_settings("nogate", 2, PARAMS, keys) == {**suite, "refine.gate": False}
    assert lv.exp_settings("oracle", 2, PARAMS, keys)["data.seed"] == "data/suites/s2/oracle/seed.jsonl"
    assert lv.exp_settings("retrain", 2, PARAMS, keys) == {**suite, "train.seed": 4}
    assert [lv.exp_target(arm) for arm in lv.ARMS] == [None, None, None, "eval-1", "eval-1"]
    assert lv.override_args({"refine.gate": False, "train.seed": 4, "select.mode": "random", "x.y": "true"}) == [
        "-S", "refine.gate=false", "-S", "train.seed=4", "-S", "select.mode=random", "-S", 'x.y="true"']


def test_template_pipeline_replaces_suite_paths_in_cmd_and_deps_only():
    pipeline = {"stages": {
        "prepare": {"cmd": "python -m stages.prepare --input data/suites/s0/seed.jsonl --output data/r0/d.parquet",
                    "deps": ["stages/prepare.py", "data/suites/s0/seed.jsonl"], "outs": ["data/r0/d.parquet"]},
        "train-1": {"cmd": "python -m stages.train --data data/r0/d.parquet", "deps": ["data/r0/d.parquet"]},
    }}
    out = lv.template_pipeline(pipeline, {"data/suites/s0/seed.jsonl": "data.seed"})
    assert out["stages"]["prepare"]["cmd"] == \
        "python -m stages.prepare --input ${data.seed} --output data/r0/d.parquet"
    assert out["stages"]["prepare"]["deps"] == ["stages/prepare.py", "${data.seed}"]
    assert out["stages"]["train-1"] == pipeline["stages"]["train-1"]
    argv = lv.stage_argv(out["stages"]["prepare"]["cmd"], {"--output": "/tmp/x.parquet"},
                         {"data.seed": "data/suites/s1/seed.jsonl"}, params_file="p.yaml")
    assert argv[1:] == ["-m", "stages.prepare", "--input", "data/suites/s1/seed.jsonl", "--output", "/tmp/x.parquet",
                        "--params", "p.yaml"]


def _exp(name, rev, state, params, metrics, baseline="b1"):
    return {"name": name, "executor": {"state": state, "local": {"log": None}},
            "revs": [{"rev": rev, "name": name, "error": None,
                      "data": {"params": {"params.yaml": {"data": params}},
                               "metrics": {path: {"data": data} for path, data in metrics.items()}
                               | {"data/r9/eval.json": {"error": {"type": "FileNotFoundError"}}}}}]}


def test_exp_show_and_picking_what_to_queue():
    params = {"train": {"seed": 0}}
    rows = [{"rev": "workspace", "experiments": None},
            {"rev": "b1", "experiments": [_exp("s0-middo", "e1", "success", params, {"data/r3/eval.json": {}}),
                                          _exp("s0-random", "e2", "failed", params, {})]},
            {"rev": "b0", "experiments": [_exp("s0-random", "e0", "success", params, {"data/r3/eval.json": {}})]}]
    found = lv.parse_exp_show(rows)
    assert [(e["name"], e["rev"], e["baseline"], e["state"]) for e in found] == [
        ("s0-middo", "e1", "b1", "success"), ("s0-random", "e2", "b1", "failed"), ("s0-random", "e0", "b0", "success")]
    assert set(found[0]["metrics"]) == {"data/r3/eval.json"}  # files that do not exist are left out
    assert lv.pick_experiment(found, "s0-middo", params, "middo", 2, "b1", lambda b: False) == ("done", found[0])
    other = {"train": {"seed": 1}}
    assert lv.pick_experiment(found, "s0-middo", other, "middo", 2, "b1", lambda b: True)[0] == "queue"
    assert lv.pick_experiment(found, "s0-middo", params, "middo", 1, "b1", lambda b: True)[0] == "queue"  # no r2 eval
    assert lv.pick_experiment(found, "s0-random", params, "random", 2, "b1", lambda b: True) == ("done", found[2])
    assert lv.pick_experiment(found, "s0-random", params, "random", 2, "b1", lambda b: False)[0] == "queue"


def test_queue_status_parsing():
    text = ("Task     Name       Created    Status\n92c81c7  s0-middo   05:14 AM   Success\n"
            "494425a  s0-random  05:14 AM   Running\n\nWorker status: 1 active, 0 idle\n")
    tasks = [("92c81c7", "s0-middo", "Success"), ("494425a", "s0-random", "Running")]
    assert lv.parse_queue_status(text) == (tasks, 1)


def test_arm_result_reads_metrics_and_controls_take_the_reference_eval_at_1():
    def refine(requests, prompt, completion, requested, accepted):
        usage = {"requests": requests, "prompt_tokens": prompt, "completion_tokens": completion}
        return {"teacher_usage": usage, "total": {"requested": requested, "accepted": accepted}}

    metrics = {"data/r1/eval.json": {"exact_match": 0.2}, "data/r3/eval.json": {"exact_match": 0.35},
               "data/r1/refine.json": refine(10, 100, 50, 8, 5), "data/r2/refine.json": refine(4, 40, 20, 3, 1)}
    figures = {"defects": {"0": 900, "1": 500, "2": 400}, "signals": None, "self_judge_auroc": 0.7}
    middo = lv.arm_result({"metrics": metrics}, "middo", 2, figures, None)
    assert (middo["eval_first"], middo["eval_final"]) == (0.2, 0.35)
    assert middo["teacher"] == {"requests": 14, "prompt_tokens": 140, "completion_tokens": 70,
                                "children_requested": 11, "children_accepted": 6}
    assert middo["defects"] == {0: 900, 1: 500, 2: 400} and middo["self_judge_auroc"] == 0.7
    assert math.isnan(middo["signals"]["quality"]["auroc"])
    oracle = lv.arm_result({"metrics": {"data/r1/eval.json": {"exact_match": 0.5}}}, "oracle", 2,
                           {"defects": {"0": 3}}, middo)
    assert (oracle["eval_first"], oracle["eval_final"], oracle["teacher"]) == (0.2, 0.5, {})
    assert oracle["defects"] == {0: 900, 1: 3}
    figures_out = lv.aggregate({(0, "middo"): middo, (0, "oracle"): oracle}, ["middo", "oracle"])
    assert figures_out["gain_vs_seed"] == pytest.approx(0.15) and figures_out["oracle_gain"] == pytest.approx(0.3)
    assert figures_out["defects_left"] == {"middo": 400, "oracle": 3}
