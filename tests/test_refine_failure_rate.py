"""Refine's failure-rate policy: failures are kept per request up to `refine.max_failure_rate`, above it the stage
fails and writes nothing, so a round whose teacher was down is never recorded as done."""

from __future__ import annotations

import json

import pytest
from test_refine import KEY_ENV, ScriptedTeacher, dead_url, refine, teacher_config, world  # noqa: F401 - fixture

from middo.refine import contract as P
from middo.refine.operations import TeacherFailure
from middo.teacher import TeacherConfig
from middo.teacher.server import ChatServer, Reply


def test_a_dead_endpoint_fails_the_stage_by_default_and_says_why(world):  # noqa: F811 - the fixture
    cfg = TeacherConfig(backend="openai", base_url=dead_url(), model="m", api_key_env=KEY_ENV,
                        cache_path=str(world["cache"]), max_retries=0)
    with pytest.raises(TeacherFailure) as info:
        refine(world, cfg)
    message = str(info.value)
    assert "3 of 3 teacher requests of the prompt phase" in message and "connection: 3" in message
    assert "refine.max_failure_rate = 0.25" in message
    assert not (world["out"] / "dataset.parquet").exists() and not (world["out"] / "refine.json").exists()


def test_replies_without_the_marker_count_towards_the_rate(world):  # noqa: F811
    unmarked = ScriptedTeacher(lambda op, body, nth: "no marker here" if op == P.RESPOND else None)
    with ChatServer(unmarked) as server, pytest.raises(TeacherFailure, match="3 of 3 .* response phase .*no final"):
        refine(world, teacher_config(server, world), reply_format="markers")


def test_replies_without_json_or_marker_count_towards_the_rate(world):  # noqa: F811
    chatty = ScriptedTeacher(lambda op, body, nth: "Sure, here is a task." if op != P.RESPOND else None)
    with ChatServer(chatty) as server, pytest.raises(TeacherFailure, match="3 of 3 .* prompt phase .*no JSON object"):
        refine(world, teacher_config(server, world), reply_format="json")


def test_failures_below_the_rate_keep_their_parents(world):  # noqa: F811
    def one_failure(op, body, nth):
        return Reply("bad request", status=400) if op == "synthesize" else None

    with ChatServer(ScriptedTeacher(one_failure)) as server:
        with pytest.raises(TeacherFailure, match="1 of 3"):
            refine(world, teacher_config(server, world), max_failure_rate=0.3)
        refine(world, teacher_config(server, world), max_failure_rate=0.34)
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"]["teacher_failures"] == 1 and metrics["total"]["accepted"] == 2
    assert metrics["max_failure_rate"] == 0.34
