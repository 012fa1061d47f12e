"""Signal health: a quality signal that is mostly NaN or near-constant fails the judge stage with what was measured
(or, with `judge.on_unusable: drop`, is dropped: select flags nothing low_quality and select.json, the log and the
report say so); ratings with too little probability on the score tokens are NaN."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import stage_error
from judge_helpers import make_samples, trained_judge
from test_judge_failure_rate import setup

from middo.model.config import ModelConfig
from middo.report.collect import RoundOutputs
from middo.report.rounds import round_section
from middo.selection import SelectConfig
from middo.selection.run import SelectPaths, run_select
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, judge_samples
from middo.signals.judge_health import JudgeFailure, apply_health
from middo.signals.judge_prompts import ASPECTS
from middo.tables import write_table
from middo.teacher.server import ChatServer
from stages import judge as judge_stage

CPU = ModelConfig(base="unused", device="cpu")


def test_a_constant_judge_fails_the_stage_saying_what_it_measured_and_what_to_do(tmp_path, capsys):
    with ChatServer(lambda body: "7") as server:
        message = stage_error(capsys, judge_stage.main, setup(tmp_path, server.base_url))
    assert "quality is near-constant: std 0.000" in message and "judge.min_quality_std = 0.2" in message
    assert "judge.mode `openai`" in message and "judge.on_unusable: drop" in message
    assert "replies already received are cached" in message  # true of the openai judge's requests
    assert not (tmp_path / "out" / "ratings.parquet").exists()


def test_a_dropped_signal_flags_nothing_and_every_output_says_so(tmp_path, capsys, caplog):
    with ChatServer(lambda body: "7") as server:
        judge_stage.main(setup(tmp_path, server.base_url, on_unusable="drop"))
    out = tmp_path / "out"
    health = json.loads((out / "judge.json").read_text())["health"]
    assert health["dropped"] and not health["usable"] and "near-constant" in health["problems"][0]
    ratings = pl.read_parquet(out / "ratings.parquet")
    assert ratings["quality"].is_nan().all() and (ratings["prompt_clarity"] == 7).all()  # aspects kept to inspect
    assert "UNUSABLE and dropped" in caplog.text
    ids = ratings["id"].to_list()
    write_table(pl.DataFrame({"id": ids, "loss_pre": np.arange(4.0), "loss_cur": np.arange(4.0)}), out / "s.parquet")
    write_table(pl.DataFrame({"id": ids, "knn_sim": np.linspace(0, 1, 4)}), out / "k.parquet")
    paths = SelectPaths(tmp_path / "d.parquet", out / "s.parquet", out / "k.parquet", out / "ratings.parquet",
                        out / "flags.parquet", out / "select.json")
    selection = run_select(paths, SelectConfig(m_quality=0.0))
    select = json.loads((out / "select.json").read_text())
    assert not selection.flags["low_quality"].any() and select["counts"]["low_quality"] == 0
    assert "judge.on_unusable: drop" in select["unusable_signals"]["quality"]  # the reason, named
    assert "signal quality is UNUSABLE" in caplog.text
    metrics = {"judge": json.loads((out / "judge.json").read_text()), "select": select}
    html = round_section(RoundOutputs(1, metrics=metrics), None)
    assert html.index("Signal health") < html.index("Training") and "quality signal UNUSABLE and dropped" in html


def test_varied_ratings_are_healthy(tmp_path):
    def handler(body: dict) -> str:
        return str(len(json.dumps(body)) % 11)

    with ChatServer(handler) as server:
        judge_stage.main(setup(tmp_path, server.base_url))
    health = json.loads((tmp_path / "out" / "judge.json").read_text())["health"]
    assert health["usable"] and not health["dropped"] and health["quality_std"] >= 0.2


def test_too_many_nan_ratings_are_unusable_and_can_be_dropped():
    table = pl.DataFrame({"id": ["a", "b"], "quality": [float("nan"), 5.0]})
    metrics = {"nan_ratings": 6, "ratings": 12, "low_score_mass": 6, "score_mass_mean": 0.0089}
    with pytest.raises(JudgeFailure, match=r"6 of 12 ratings \(50%\).*low score mass: 6; mean score-token mass 0.00"):
        apply_health(table, metrics, JudgeConfig())
    with pytest.raises(JudgeFailure) as local:  # a local judge caches nothing: the message does not promise it
        apply_health(table, metrics, JudgeConfig(mode="logits"))
    assert "re-run" in str(local.value) and "cached" not in str(local.value)
    dropped = apply_health(table, metrics, JudgeConfig(on_unusable="drop"))
    assert dropped["quality"].is_nan().all() and metrics["health"]["dropped"]


def test_score_mass_below_the_minimum_makes_the_rating_nan(tiny_model_dir, tmp_path_factory):
    samples = make_samples(4)
    untrained = judge_samples(samples, Judge(JudgeConfig(mode="logits"), tiny_model_dir, CPU))
    assert untrained.metrics["score_mass_mean"] < 0.25 and untrained.metrics["nan_ratings"] == 24  # never answers
    kept = judge_samples(samples, Judge(JudgeConfig(mode="logits", min_score_mass=0.0), tiny_model_dir, CPU))
    assert kept.metrics["nan_ratings"] == 0
    judge = trained_judge(tiny_model_dir, "7", tmp_path_factory.mktemp("judge7"))
    trained = judge_samples(samples, Judge(JudgeConfig(mode="logits"), judge, CPU))
    print("score mass: untrained", untrained.metrics["score_mass_mean"], "trained", trained.metrics["score_mass_mean"],
          trained.metrics["score_mass_min"])
    assert trained.metrics["nan_ratings"] == 0 and trained.metrics["score_mass_mean"] > 0.25
    assert np.isfinite(trained.table.select(ASPECTS).to_numpy()).all()


@pytest.mark.parametrize(("name", "values", "message"), [
    ("judge", {"on_unusabel": "drop"}, "did you mean judge.on_unusable"),
    ("judge", {"on_unusable": "skip"}, "choose one of"),
    ("judge", {"min_quality_std": -1}, "use 0 or more"),
    ("refine", {"reply_fromat": "json"}, "did you mean refine.reply_format"),
    ("refine", {"reply_format": "xml"}, "choose one of"),
])
def test_the_health_and_contract_params_are_checked(name, values, message):
    from middo.config import section
    from middo.errors import ConfigError
    from middo.refine.config import RefineConfig

    with pytest.raises(ConfigError, match=message):
        section({"judge": JudgeConfig, "refine": RefineConfig}[name], {name: values}, name)
