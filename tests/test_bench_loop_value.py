"""Pure helpers of bench/loop_value.py: arms as DVC experiment settings, reading `dvc exp show --json` and picking
what to run, and the result of one experiment."""

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


def test_overrides_and_rounds_go_into_the_baseline():
    overrides = lv.parse_overrides(["train.epochs=1", "pretrain.max_steps=5", "teacher.options.error_rate=0.3"])
    params = lv.base_params(PARAMS, overrides, 1)
    assert params["train"]["epochs"] == 1 and params["pretrain"]["max_steps"] == 5
    assert params["teacher"]["options"]["error_rate"] == 0.3 and params["loop"]["rounds"] == 1
    assert PARAMS["train"]["epochs"] == 40  # not modified in place
    assert lv.base_params(PARAMS, {}, None)["loop"]["rounds"] == 2
    with pytest.raises(SystemExit, match="no such setting"):
        lv.base_params(PARAMS, {"train.nope": 1}, None)
    with pytest.raises(SystemExit, match="per seed"):
        lv.base_params(PARAMS, {"data.seed": "x.jsonl"}, None)
    with pytest.raises(SystemExit, match="section.key=value"):
        lv.parse_overrides(["epochs=1"])
    with pytest.raises(SystemExit, match="no pretrain.corpus"):
        lv.base_params({**PARAMS, "pretrain": {"max_steps": None}}, {}, None)


def test_each_arm_maps_to_settings_and_a_target():
    suite = {"data.seed": "data/suites/s2/seed.jsonl", "data.eval": "data/suites/s2/eval.jsonl",
             "pretrain.corpus": "data/suites/s2/corpus.txt"}
    assert lv.exp_settings("middo", 2, PARAMS) == suite
    assert lv.exp_settings("random", 2, PARAMS) == {**suite, "select.mode": "random"}
    assert lv.exp_settings("nogate", 2, PARAMS) == {**suite, "refine.gate": False}
    assert lv.exp_settings("mrgate", 2, PARAMS) == {**suite, "refine.gate_loss_model": "round"}
    assert lv.exp_settings("oracle", 2, PARAMS) == {**suite, "data.seed": "data/suites/s2/oracle/seed.jsonl"}
    assert lv.exp_settings("retrain", 2, PARAMS) == {**suite, "train.seed": 4}
    assert [lv.exp_target(arm) for arm in lv.ARMS] == [None, None, None, None, "eval-1", "eval-1"]
    assert lv.override_args({"refine.gate": False, "train.seed": 4, "select.mode": "random", "x.y": "true",
                             "a.b": None, "c.d": "a b"}) == [
        "-S", "refine.gate=false", "-S", "train.seed=4", "-S", "select.mode=random", "-S", 'x.y="true"',
        "-S", "a.b=null", "-S", 'c.d="a b"']
    expected = lv.expected_params(PARAMS, lv.exp_settings("retrain", 2, PARAMS))
    assert expected["data"]["seed"] == suite["data.seed"] and expected["train"]["seed"] == 4
    assert expected["pretrain"]["corpus"] == suite["pretrain.corpus"] and PARAMS["train"]["seed"] == 3


def _exp(name, rev, state, params, metrics):
    return {"name": name, "executor": {"state": state, "local": {"log": None}} if state else None,
            "revs": [{"rev": rev, "name": name, "error": None,
                      "data": {"params": {"params.yaml": {"data": params}},
                               "metrics": {path: {"data": data} for path, data in metrics.items()}
                               | {"data/r9/eval.json": {"error": {"type": "FileNotFoundError"}}}}}]}


def test_exp_show_and_picking_what_to_run():
    params = {"train": {"seed": 0}}
    rows = [{"rev": "workspace", "experiments": None},
            {"rev": "b1", "experiments": [_exp("s0-middo", "e1", "success", params, {"data/r3/eval.json": {}}),
                                          _exp("s0-random", "e2", "failed", params, {"data/r3/eval.json": {}})]},
            {"rev": "b0", "experiments": [_exp("s0-random", "e0", "success", params, {"data/r3/eval.json": {}}),
                                          _exp("s0-oracle", "e3", None, params, {"data/r1/eval.json": {}})]}]
    found = lv.parse_exp_show(rows)
    assert [(e["name"], e["rev"], e["baseline"], e["state"]) for e in found] == [
        ("s0-middo", "e1", "b1", "success"), ("s0-random", "e2", "b1", "failed"),
        ("s0-random", "e0", "b0", "success"), ("s0-oracle", "e3", "b0", "success")]  # no executor: a finished run
    assert set(found[0]["metrics"]) == {"data/r3/eval.json"}  # files that do not exist are left out
    assert found[0]["params"] == params
    assert lv.finished_experiment(found, "s0-middo", params, "middo", 2, "b1", lambda b: False) is found[0]
    assert lv.finished_experiment(found, "s0-middo", {"train": {"seed": 1}}, "middo", 2, "b1", lambda b: True) is None
    assert lv.finished_experiment(found, "s0-middo", params, "middo", 1, "b1", lambda b: True) is None  # no r2 eval
    assert lv.finished_experiment(found, "s0-random", params, "random", 2, "b1", lambda b: b == "b0") is found[2]
    assert lv.finished_experiment(found, "s0-random", params, "random", 2, "b1", lambda b: False) is None
    assert lv.finished_experiment(found, "s0-oracle", params, "oracle", 2, "b1", lambda b: True) is found[3]
    rerun = [*found, {**found[2], "baseline": "b1", "rev": "e4"}]  # HEAD's preferred over an earlier baseline's
    assert lv.finished_experiment(rerun, "s0-random", params, "random", 2, "b1", lambda b: True)["rev"] == "e4"


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
