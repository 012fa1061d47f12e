"""The teacher at volume inside the refine stage: a spending cap stops it with parents kept and counted, and the dry
run (`middo estimate`) counts exactly the requests the live run then sends."""

from __future__ import annotations

import json

import pytest
from test_refine import (  # noqa: F401 - world is a fixture
    ScriptedTeacher,
    assert_conserved,
    fake_scorers,
    refine,
    refine_paths,
    teacher_config,
    world,
)
from typer.testing import CliRunner

from middo.cli.main import app
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.estimate import estimate_refine, plan_refine
from middo.refine.run import run_refine
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge
from middo.teacher import make_teacher
from middo.teacher.limits import BudgetExceeded, spending_checked
from middo.teacher.server import ChatServer


def _estimate(paths, cfg):
    return estimate_refine(paths["data"], paths["flags"], paths["knn"], RefineConfig(), cfg)


def test_a_cap_keeps_the_parents_of_unsent_requests_and_fails_the_stage(world):  # noqa: F811 - the fixture
    judge = Judge(JudgeConfig(), "unused-model", ModelConfig(base="unused"))
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world, max_requests=4, concurrency=1)
        stopped = r"teacher.max_requests = 4 reached.*spent 4 requests.*kept their parents.*Raise teacher.max_requests"
        with (make_teacher(cfg) as teacher, pytest.raises(BudgetExceeded, match=stopped),
              spending_checked(teacher)):  # as stages.refine runs it
            result = run_refine(refine_paths(world), teacher, RefineConfig(max_failure_rate=1.0), judge, True,
                                0.0, EmbedConfig(), scorers=fake_scorers())
        assert server.stats.total == 4  # 3 prompts, then the cap stopped 2 of the 3 responses
    after = assert_conserved(world)  # every parent of an unsent request stayed
    assert after.height == 6
    total = result.metrics["total"]
    assert total["teacher_failures"] == 2 and total["accepted"] == 1
    assert result.metrics["teacher_usage"]["failures"] == {"budget": 2}


def test_estimate_counts_what_the_live_run_sends(world):  # noqa: F811
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world, prices={"input": 0.15, "output": 0.6})
        before = _estimate(world, cfg)
        assert server.stats.total == 0  # the dry run sends nothing
        result = refine(world, cfg)
        assert before.requests == server.stats.total == 6 and before.cached == 0
        usage = result.metrics["teacher_usage"]
        assert before.completion_tokens >= usage["completion_tokens"] and before.cost > 0
        after = _estimate(world, cfg)  # a re-run is free: every request, both phases, is in the cache
        assert after.requests == 0 and after.cached == 6
        assert all(p.exact for p in plan_refine(world["data"], world["flags"], world["knn"], RefineConfig(), cfg))


def test_estimate_and_write_batch_commands(world, tmp_path, monkeypatch):  # noqa: F811
    project = tmp_path / "project"
    (project / "data" / "r0").mkdir(parents=True)
    (project / "data" / "r1").mkdir(parents=True)
    (project / "data" / "r0" / "dataset.parquet").write_bytes(world["data"].read_bytes())
    for name in ("flags", "knn"):
        (project / "data" / "r1" / f"{name}.parquet").write_bytes(world[name].read_bytes())
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                              "cache_path": str(tmp_path / "c.sqlite")}}))
    runner = CliRunner()
    shown = runner.invoke(app, ["estimate", "--project", str(project), "--params", str(params), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) | {"token_count": ""} == json.loads(shown.output) | {
        "round": 1, "requests": 6, "cached": 0, "cost": None, "token_count": ""}
    text = runner.invoke(app, ["estimate", "--round", "1", "--project", str(project), "--params", str(params)])
    assert text.exit_code == 0 and "requests           6 (plus 0 cached" in text.output
    assert "tokenizer-free estimate" in text.output and "no teacher.prices" in text.output
    missing = runner.invoke(app, ["estimate", "--round", "2", "--project", str(project), "--params", str(params)])
    assert missing.exit_code == 1 and "run the stages before refine first" in missing.output
    written = runner.invoke(app, ["teacher", "write-batch", str(tmp_path / "in.jsonl"), "--project", str(project),
                                  "--params", str(params)])
    assert written.exit_code == 0 and "wrote 3 requests" in written.output  # phase one; phase two once it is back
    lines = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()]
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert len({line["custom_id"] for line in lines}) == 3
