"""The teacher contract a real model can follow (`refine.reply_format: json`): a JSON schema as `response_format` over
real HTTP, the whole assistant message as the response, the local backend's prefilled JSON, the marker fallback;
and every attempt's raw replies in the refine log and the report."""

from __future__ import annotations

import json

import httpx
import polars as pl
from test_refine import PROMPTS, ScriptedTeacher, assert_conserved, between, operation, refine, teacher_config
from test_refine import world as world  # noqa: F401, PLC0414 (the fixture, registered under its own name)

from middo.model.load import load_model
from middo.refine import contract as P
from middo.refine.contract import JSON_FORMAT, resolve_reply_format
from middo.refine.parse import Parsed, extract_json, read_reply, whole_reply
from middo.refine.prompts import load_refine_prompts
from middo.report.rounds import teacher_replies
from middo.teacher import ChatRequest, TeacherConfig
from middo.teacher.local import LocalTeacher
from middo.teacher.server import ChatServer


class JsonTeacher:
    """Follows the JSON contract: a JSON object for a new task, the bare answer for a response; keeps the bodies."""

    def __init__(self):
        self.bodies: list[dict] = []

    def __call__(self, body: dict) -> str:
        self.bodies.append(body)
        op, user = operation(body), body["messages"][-1]["content"]
        if op == P.RESPOND:
            return f"The answer to: {between(user, P.PROMPT_OPEN, P.PROMPT_CLOSE)}"
        sample = between(user, P.SAMPLE_OPEN, P.RESPONSE_OPEN if op != "synthesize" else P.SAMPLE_CLOSE)
        word = {"simplify": "Easy", "improve": "Clear", "synthesize": "Fresh"}[op]  # what the fake scorers favour
        return json.dumps({"text": f"{word}: {sample}"})


def test_json_contract_over_http_sends_the_schema_and_reads_both_phases(world):
    scripted = JsonTeacher()
    with ChatServer(scripted) as server:
        refine(world, teacher_config(server, world), reply_format="json")
    prompt_phase = [b for b in scripted.bodies if operation(b) != P.RESPOND]
    response_phase = [b for b in scripted.bodies if operation(b) == P.RESPOND]
    assert len(prompt_phase) == 3 and all(b["response_format"] == JSON_FORMAT for b in prompt_phase)
    assert all("response_format" not in b for b in response_phase)
    assert all(P.FINAL_OPEN not in b["messages"][0]["content"] for b in scripted.bodies)  # no marker asked for
    after = assert_conserved(world)
    improved = after.filter(pl.col("op") == "improve").row(0, named=True)["messages"]
    assert improved[0]["content"] == f"Clear: {PROMPTS[1]}"
    assert improved[1]["content"] == f"The answer to: Clear: {PROMPTS[1]}"
    log = pl.read_parquet(world["out"] / "refine_log.parquet")
    assert log["outcome"].to_list() == ["accepted"] * 3
    improve = log.filter(pl.col("op") == "improve").row(0, named=True)
    assert json.loads(improve["prompt_reply"]) == {"text": f"Clear: {PROMPTS[1]}"}
    assert improve["response_reply"] == f"The answer to: Clear: {PROMPTS[1]}"


def test_a_teacher_that_still_writes_markers_is_read_under_json(world):
    with ChatServer(ScriptedTeacher()) as server:
        refine(world, teacher_config(server, world), reply_format="json")
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"]["accepted"] == 3 and metrics["total"]["unparsed"] == 0


def test_unparsed_replies_are_in_the_log_and_the_report(world):
    def fault(op, body, nth):
        return "Sure! Here is a clearer task: what is 2 + 2?" if op == "improve" else None

    with ChatServer(ScriptedTeacher(fault)) as server:
        refine(world, teacher_config(server, world), reply_format="json", max_failure_rate=1.0)
    log = pl.read_parquet(world["out"] / "refine_log.parquet")
    improve = log.filter(pl.col("op") == "improve").row(0, named=True)
    assert improve["outcome"] == "unparsed" and "no_json" in improve["reason"]
    assert improve["prompt_reply"] == "Sure! Here is a clearer task: what is 2 + 2?"
    assert improve["response_reply"] is None
    html = teacher_replies(log)
    assert "Teacher replies" in html and "Sure! Here is a clearer task" in html and "<h4>synthesize</h4>" in html


def test_the_loopback_server_refuses_a_malformed_response_format():
    with ChatServer(lambda body: "ok") as server:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}
        response = httpx.post(f"{server.base_url}/chat/completions", json=body)
        assert response.status_code == 400 and "json_schema.name" in response.text
        body["response_format"] = JSON_FORMAT
        assert httpx.post(f"{server.base_url}/chat/completions", json=body).status_code == 200


def test_parsing_json_whole_replies_and_the_marker_fallback():
    assert extract_json('{"text": " A task. "}') == Parsed("A task.", None)
    assert extract_json('```json\n{"text": "line one\nline two"}\n```') == Parsed("line one\nline two", None)
    assert extract_json('{"text": "  "}') == Parsed(None, "empty")
    assert extract_json("Here it is: <final>Task</final>") == Parsed("Task", None)
    assert extract_json('{"task": "x"}') == Parsed(None, "no_json")
    assert whole_reply("  The answer is 4.\n") == Parsed("The answer is 4.", None)
    assert whole_reply("Sure. <final>4</final>") == Parsed("4", None) and whole_reply(" ") == Parsed(None, "empty")
    assert read_reply('{"text": "T"}', "prompt", "markers") == Parsed(None, "no_marker")
    assert read_reply("4", "response", "json") == Parsed("4", None)


def test_auto_is_json_for_real_backends_and_markers_for_the_simulated_one():
    assert resolve_reply_format("auto", "openai") == "json" and resolve_reply_format("auto", "local") == "json"
    assert resolve_reply_format("auto", "sim") == "markers" and resolve_reply_format("markers", "openai") == "markers"
    prompts = load_refine_prompts(reply_format="json")
    assert '{"text": "<the improved task>"}' in prompts.systems["improve"]
    assert "your whole reply is taken as the answer" in prompts.systems[P.RESPOND]


def test_the_local_backend_prefills_the_json_object(tiny_model_dir):
    cfg = TeacherConfig(backend="local", model=str(tiny_model_dir), cache_path="", max_tokens=12)
    teacher = LocalTeacher.create(cfg, load_model(tiny_model_dir, device="cpu"))
    messages = [{"role": "user", "content": "the cat sees a dog. why?"}]
    free, constrained = teacher.complete([ChatRequest(messages, 0.0, 12, "improve"),
                                          ChatRequest(messages, 0.0, 12, "improve", response_format=JSON_FORMAT)])
    assert isinstance(json.loads(constrained.text)["text"], str)  # an untrained model's words, as a JSON object
    assert constrained.text != free.text
    assert extract_json(constrained.text).failure in (None, "empty")
