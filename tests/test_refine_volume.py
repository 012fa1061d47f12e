"""The teacher at volume inside the refine stage: a spending cap stops it with parents kept and counted, and the dry
run (`middo estimate`) counts exactly the requests the live run then sends."""

from __future__ import annotations

import dataclasses
import hashlib
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
from middo.refine import contract as P
from middo.refine.config import RefineConfig
from middo.refine.estimate import estimate_refine, plan_refine
from middo.refine.run import run_refine
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge
from middo.teacher import make_teacher
from middo.teacher.cache import ReplyCache
from middo.teacher.limits import BudgetExceeded, cost, estimate_prompt_tokens, spending_checked
from middo.teacher.server import ChatServer, Reply
from middo.teacher.types import ChatReply


def _estimate(paths, cfg, config: RefineConfig | None = None):
    return estimate_refine(paths["data"], paths["flags"], paths["knn"], config or RefineConfig(), cfg)


def _sent(server: ChatServer) -> int:
    """Requests the server answered: live ones and the lines of its batches."""
    return server.stats.total + sum(batch.counts["total"] for batch in server.batches.batches.values())


def _capped_refine(paths, cfg, stopped: str):
    """run_refine as stages.refine runs it, with a cap that must stop it: (result, what the teacher spent)."""
    judge = Judge(JudgeConfig(), "unused-model", ModelConfig(base="unused"))
    with make_teacher(cfg) as teacher, pytest.raises(BudgetExceeded, match=stopped), spending_checked(teacher):
        result = run_refine(refine_paths(paths), teacher, RefineConfig(max_failure_rate=1.0), judge, True, 0.0,
                            EmbedConfig(), scorers=fake_scorers())
    return result, teacher.budget.spent


@pytest.mark.parametrize("mode", ["live", "batch"])
def test_a_cap_keeps_the_parents_of_unsent_requests_and_fails_the_stage(world, mode):  # noqa: F811 - the fixture
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world, max_requests=4, concurrency=1, mode=mode, batch_poll_s=0.01)
        stopped = r"teacher.max_requests = 4 reached.*spent 4 requests.*kept their parents.*Raise teacher.max_requests"
        result, _ = _capped_refine(world, cfg, stopped)
        assert _sent(server) == 4  # 3 prompts, then the cap stopped 2 of the 3 responses
        assert server.stats.total == (4 if mode == "live" else 0)
    after = assert_conserved(world)  # every parent of an unsent request stayed
    assert after.height == 6
    total = result.metrics["total"]
    assert total["teacher_failures"] == 2 and total["accepted"] == 1
    assert result.metrics["teacher_usage"]["failures"] == {"budget": 2}


@pytest.mark.parametrize("cap", ["max_total_tokens", "max_cost"])
def test_a_token_or_cost_cap_stops_a_batch_stage_before_crossing_it(world, cap):  # noqa: F811
    prices = {"input": 1.0, "output": 2.0}
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world, mode="batch", batch_poll_s=0.01, prices=prices)
        first = [p.request for p in plan_refine(world["data"], world["flags"], world["knn"], RefineConfig(), cfg)][:3]
        worst = [(estimate_prompt_tokens(r), r.max_tokens) for r in first]  # phase one, as the caps reserve it
        # just below phase one's worst case: its batch holds the first two requests, the third would cross
        limit = {"max_total_tokens": sum(p + c for p, c in worst) - 1,
                 "max_cost": cost(cfg, sum(p for p, _ in worst), sum(c for _, c in worst)) * 0.999}[cap]
        result, spent = _capped_refine(world, dataclasses.replace(cfg, **{cap: limit}), rf"teacher.{cap} = .* reached")
        assert [batch.counts["total"] for batch in server.batches.batches.values()] == [2]
        assert server.stats.total == 0
    assert spent.requests == 2 and cost(cfg, spent.prompt_tokens, spent.completion_tokens) > 0
    assert spent.prompt_tokens + spent.completion_tokens <= limit if cap == "max_total_tokens" else (
        cost(cfg, spent.prompt_tokens, spent.completion_tokens) <= limit)
    assert assert_conserved(world).height == 6  # no child: the caps stopped every response
    assert result.metrics["teacher_usage"]["failures"] == {"budget": 3}  # one prompt, two responses


def test_estimate_counts_what_the_live_run_sends(world):  # noqa: F811
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world, prices={"input": 0.15, "output": 0.6})
        before = _estimate(world, cfg)
        assert server.stats.total == 0  # the dry run sends nothing
        result = refine(world, cfg)
        assert before.requests == server.stats.total == 6 and before.cached == 0
        usage = result.metrics["teacher_usage"]
        assert before.completion_tokens >= usage["completion_tokens"] and before.cost > 0
        assert before.provisional == 3  # phase two, counted one per task before phase one has run
        after = _estimate(world, cfg)  # a re-run is free: every request, both phases, is in the cache
        assert after.requests == 0 and after.cached == 6 and after.provisional == 0
        assert all(p.exact for p in plan_refine(world["data"], world["flags"], world["knn"], RefineConfig(), cfg))


def test_estimate_counts_one_response_per_task_of_the_same_parent(world):  # noqa: F811
    def distinct(op, body, nth):  # two synthesize variants of one parent write two different prompts
        if op == "synthesize":
            tag = hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()[:8]
            return Reply(f"{P.FINAL_OPEN}Fresh task {tag}{P.FINAL_CLOSE}")
        return None

    config = RefineConfig(synth_per_sample=2)
    with ChatServer(ScriptedTeacher(distinct)) as server:
        cfg = teacher_config(server, world)
        before = _estimate(world, cfg, config)
        refine(world, cfg, synth_per_sample=2)
        assert before.requests == server.stats.total == 8 and before.provisional == 4


def test_a_cached_reply_to_a_provisional_request_is_not_free(world):  # noqa: F811
    with ChatServer(ScriptedTeacher()) as server:
        cfg = teacher_config(server, world)
    # e.g. a parent that an earlier round wrote: its own respond request, the stand-in here, is in the cache
    stand_ins = [p for p in plan_refine(world["data"], world["flags"], world["knn"], RefineConfig(), cfg)
                 if not p.exact]
    cache = ReplyCache(cfg.cache_path)
    cache.put_many([(p.key, ChatReply("an earlier answer", None, 1, 1, False)) for p in stand_ins])
    cache.close()
    estimate = _estimate(world, cfg)
    assert len(stand_ins) == 3 and (estimate.requests, estimate.provisional, estimate.cached) == (6, 3, 0)


def test_estimate_is_an_upper_bound_until_phase_one_is_cached_then_exact(world):  # noqa: F811
    def unusable(op, body, nth):  # simplify's new prompt has no final marker: it gets no phase-two request
        return Reply("I would rather not.") if op == "simplify" else None

    with ChatServer(ScriptedTeacher(unusable)) as server:
        cfg = teacher_config(server, world, concurrency=1)
        cold = _estimate(world, cfg)
        assert (cold.requests, cold.provisional) == (6, 3)
        # a cap that lets phase one through and stops phase two: its replies are cached, phase two is not sent
        _capped_refine(world, dataclasses.replace(cfg, max_requests=3), "teacher.max_requests = 3 reached")
        assert server.stats.total == 3
        warm = _estimate(world, cfg)
        assert (warm.requests, warm.provisional, warm.cached) == (2, 0, 3)
        result = refine(world, cfg, max_failure_rate=1.0)
        assert server.stats.total - 3 == warm.requests == result.metrics["teacher_usage"]["requests"] == 2
        assert cold.requests >= server.stats.total


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
    shown = json.loads(shown.output)
    assert shown["round"] == 1 and shown["judge"] is None and shown["gate_judge"] is None  # judge.mode logits
    assert shown["refine"] | {"token_count": ""} == shown["refine"] | {
        "requests": 6, "provisional": 3, "cached": 0, "cost": None, "token_count": ""}
    text = runner.invoke(app, ["estimate", "--round", "1", "--project", str(project), "--params", str(params)])
    assert text.exit_code == 0 and "requests           6 (plus 0 cached" in text.output
    assert "of which 3 in phase two, one per task until phase one's replies are cached: an upper bound" in text.output
    assert "tokenizer-free estimate" in text.output and "no teacher.prices" in text.output
    missing = runner.invoke(app, ["estimate", "--round", "2", "--project", str(project), "--params", str(params)])
    assert missing.exit_code == 1 and "run the stages before refine first" in missing.output
    written = runner.invoke(app, ["teacher", "write-batch", str(tmp_path / "in.jsonl"), "--project", str(project),
                                  "--params", str(params)])
    assert written.exit_code == 0 and "wrote 3 requests" in written.output  # phase one; phase two once it is back
    lines = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()]
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert len({line["custom_id"] for line in lines}) == 3
