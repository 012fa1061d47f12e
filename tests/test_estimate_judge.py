"""The dry run (`middo estimate`) of the judge's teacher requests (`judge.mode: openai`), counted on a loopback
server: the judge stage's estimate is exact, the refine gate's is an upper bound that is met when every improve child
reaches the judge."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest
from test_refine import (  # noqa: F401 - world is a fixture
    ScriptedTeacher,
    fake_scorers,
    refine_paths,
    teacher_config,
    world,
)
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import read_samples, sample_id, write_samples
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine import contract as P
from middo.refine.config import RefineConfig
from middo.refine.estimate import estimate_gate, plan_gate
from middo.refine.run import GateScorers, run_refine
from middo.refine.scorers import judge_rater
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, JudgePaths, run_judge
from middo.signals.judge_estimate import estimate_judge
from middo.teacher import make_teacher
from middo.teacher.server import ChatServer, Reply

JUDGE = JudgeConfig(mode="openai")
PRICES = {"input": 0.15, "output": 0.6}


def rating(body: dict) -> Reply:
    """A rating 0-10 that differs between questions and samples (so the quality signal has spread)."""
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).digest()
    return Reply(str(digest[0] % 11))


def judge_or_refine(fault=None):
    """Rating requests (they ask for logprobs) rated, refine requests answered by the scripted teacher."""
    scripted = ScriptedTeacher(fault)
    return lambda body: rating(body) if body.get("logprobs") else scripted(body)


def judged(server: ChatServer) -> int:
    return sum(bool(body.get("logprobs")) for body in server.stats.bodies)


def with_a_shared_prompt(world, tmp_path):  # noqa: F811 - the fixture
    """The world's D(r-1) plus a sample with the first one's prompt and another reply: their three prompt-rating
    requests are the same (`judge.prompt_sees_response` off) and sent once."""
    frame = read_samples(world["data"])
    first = frame.row(0, named=True)
    messages = [first["messages"][0], {"role": "assistant", "content": "another reply"}]
    extra = frame.head(1).with_columns(pl.Series("id", [sample_id(messages)]),
                                       pl.Series("messages", [messages], dtype=frame.schema["messages"]))
    path = tmp_path / "shared.parquet"
    write_samples(pl.concat([frame, extra]), path)
    return path


def run_judge_stage(data, cfg, out):
    with make_teacher(cfg) as teacher:
        paths = JudgePaths(data, "unused-model", out / "ratings.parquet", out / "judge.json", out / "hist.csv")
        return run_judge(paths, Judge(JUDGE, "unused-model", ModelConfig(base="unused"), teacher))


def test_the_judge_stage_estimate_is_what_the_stage_sends(world, tmp_path):  # noqa: F811
    data = with_a_shared_prompt(world, tmp_path)
    with ChatServer(rating) as server:
        cfg = teacher_config(server, world, prices=PRICES)
        before = estimate_judge(data, JUDGE, cfg)
        assert server.stats.total == 0  # the dry run sends nothing
        result = run_judge_stage(data, cfg, tmp_path / "out")
        assert before.requests == server.stats.total == result.metrics["teacher_usage"]["requests"] == 7 * 6 - 3
        assert before.provisional == 0 and before.cached == 0 and before.cost > 0
        assert before.completion_tokens == before.requests * JUDGE.max_new_tokens
        after = estimate_judge(data, JUDGE, cfg)  # a re-run is free: every rating is in the request cache
        assert (after.requests, after.cached) == (0, 7 * 6)
    assert estimate_judge(data, JudgeConfig(mode="logits"), cfg) is None  # a local judge asks the teacher nothing


def refine_with_the_judge(world, cfg, **overrides):  # noqa: F811
    """run_refine as stages.refine runs it in `judge.mode: openai`: the gate rates through the stage's teacher (fake
    losses and embeddings)."""
    with make_teacher(cfg) as teacher:
        judge = Judge(JUDGE, "unused-model", ModelConfig(base="unused"), teacher)
        fake = fake_scorers()
        scorers = GateScorers(fake.loss, judge_rater(judge), fake.embed)
        return run_refine(refine_paths(world), teacher, RefineConfig(**overrides), judge, True, 0.0, EmbedConfig(),
                          scorers=scorers)


def _gate(world, cfg, **overrides):  # noqa: F811
    return estimate_gate(world["data"], world["flags"], world["knn"], RefineConfig(**overrides), JUDGE, cfg)


def test_the_gate_bound_is_what_is_sent_when_every_improve_child_reaches_the_judge(world):  # noqa: F811
    with ChatServer(judge_or_refine()) as server:
        cfg = teacher_config(server, world, prices=PRICES)
        cold = _gate(world, cfg)
        assert (cold.requests, cold.provisional) == (12, 6)  # one improve child (a stand-in) and its parent
        result = refine_with_the_judge(world, cfg)
        assert result.metrics["ops"]["improve"]["unparsed"] == 0
        assert judged(server) == cold.requests == 12
        assert result.metrics["teacher_usage"]["tokens"]["judge"]["completion_tokens"] <= cold.completion_tokens
        warm = _gate(world, cfg)  # every reply cached: the child is known and its ratings are free
        assert (warm.requests, warm.provisional, warm.cached) == (0, 0, 12)
    assert all(p.exact for p in plan_gate(world["data"], world["flags"], world["knn"], RefineConfig(), JUDGE, cfg))


def test_the_gate_bound_is_above_what_is_sent_and_exact_once_the_replies_are_cached(world):  # noqa: F811
    def unusable(op, body, nth):  # improve's response is empty: no child, nothing rated
        improve = op == P.RESPOND and "wat is" in body["messages"][-1]["content"]
        return Reply(f"{P.FINAL_OPEN} {P.FINAL_CLOSE}") if improve else None

    with ChatServer(judge_or_refine(unusable)) as server:
        cfg = teacher_config(server, world)
        cold = _gate(world, cfg)
        result = refine_with_the_judge(world, cfg, max_failure_rate=1.0)
        assert result.metrics["ops"]["improve"]["unparsed"] == 1
        assert judged(server) == 0 < cold.requests == 12
        warm = _gate(world, cfg)  # both replies of the improve task cached: no child, so the parent is not rated
        assert (warm.requests, warm.provisional, warm.cached) == (0, 0, 0)


@pytest.mark.parametrize("overrides", [{"gate": False}, {}])
def test_no_gate_judge_requests_without_the_gate_or_the_openai_judge(world, overrides):  # noqa: F811
    with ChatServer(judge_or_refine()) as server:
        cfg = teacher_config(server, world)
    config = RefineConfig(**overrides)
    judge = JUDGE if overrides else JudgeConfig(mode="logits")
    assert estimate_gate(world["data"], world["flags"], world["knn"], config, judge, cfg) is None


def test_estimate_command_prints_each_stage_and_the_round(world, tmp_path):  # noqa: F811
    project = tmp_path / "project"
    for name, where in (("data", "r0/dataset"), ("flags", "r1/flags"), ("knn", "r1/knn")):
        (project / "data" / where).parent.mkdir(parents=True, exist_ok=True)
        (project / "data" / f"{where}.parquet").write_bytes(world[name].read_bytes())
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                              "cache_path": str(tmp_path / "c.sqlite")}, "judge": {"mode": "openai"}}))
    args = ["estimate", "--round", "1", "--project", str(project), "--params", str(params)]
    shown = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert shown["judge"]["requests"] == 36 and shown["refine"]["requests"] == 6
    assert shown["gate_judge"]["requests"] == 12 and shown["judge_done"] is False
    assert shown["total"]["requests"] == 36 + 6 + 12 and shown["total"]["provisional"] == 3 + 6
    text = CliRunner().invoke(app, args).output
    assert "refine stage, the gate's judge: an upper bound" in text and "requests           12 (plus 0 cached" in text
    (project / "data" / "r1" / "ratings.parquet").write_bytes(b"")  # the judge stage has run: out of the total
    assert json.loads(CliRunner().invoke(app, [*args, "--json"]).output)["total"]["requests"] == 6 + 12
    for name in ("flags", "knn", "ratings"):  # before select: the judge stage only
        (project / "data" / "r1" / f"{name}.parquet").unlink()
    early = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert (early["refine"], early["gate_judge"], early["total"]["requests"]) == (None, None, 36)
    assert "needs data/r1/flags.parquet" in CliRunner().invoke(app, args).output

