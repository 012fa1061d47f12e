"""The refine stage against a real loopback OpenAI-compatible server: happy path, faults, re-runs, secrets.

The server is scripted: it answers by the `Operation:` line of each request (the prompt contract of
`middo.refine.prompts`) and injects the faults a test asks for. The gate uses fast fake scorers here (its own
tests cover the checks; the end-to-end test in test_refine_stage.py wires the real model).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from middo.data.schema import SAMPLE_SCHEMA, read_samples, sample_id, write_samples
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine import contract as P
from middo.refine.config import RefineConfig
from middo.refine.conservation import check_conservation
from middo.refine.operations import TeacherFailure
from middo.refine.run import GateScorers, RefinePaths, run_refine
from middo.signals.config import JudgeConfig
from middo.signals.embeddings import save_embeddings
from middo.signals.judge import Judge
from middo.teacher import TeacherConfig, make_teacher
from middo.teacher.server import ChatServer, Reply

KEY_ENV = "MIDDO_TEST_TEACHER_KEY"
SECRET = "sk-test-4f1c9a7e-do-not-leak"
DIM = 32
PROMPTS = ["Multiply 123 by 45 and explain each step.", "wat is captial of frnace", "Name three moons of Jupiter.",
           "Write a haiku about rain.", "What is 2 + 2?", "Translate 'cat' to French."]


def between(text: str, open_tag: str, close_tag: str) -> str:
    return re.search(re.escape(open_tag) + r"\n?(.*?)\n?" + re.escape(close_tag), text, re.DOTALL).group(1)


def operation(body: dict) -> str:
    return body["messages"][0]["content"].splitlines()[0].removeprefix(P.OPERATION_PREFIX)


class ScriptedTeacher:
    """Answers each operation in a recognisable way; `fault(op, body, nth)` may return a Reply to send instead,
    where `nth` counts earlier arrivals of the same request body."""

    def __init__(self, fault=None):
        self.fault = fault
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> Reply | str:
        op, user = operation(body), body["messages"][-1]["content"]
        key = json.dumps(body["messages"], sort_keys=True)
        with self.lock:
            nth = self.seen[key]
            self.seen[key] += 1
        if self.fault is not None and (reply := self.fault(op, body, nth)) is not None:
            return reply
        if op == P.RESPOND:
            return f"Sure.\n{P.FINAL_OPEN}The answer to: {between(user, P.PROMPT_OPEN, P.PROMPT_CLOSE)}{P.FINAL_CLOSE}"
        sample = between(user, P.SAMPLE_OPEN, P.RESPONSE_OPEN if op != "synthesize" else P.SAMPLE_CLOSE)
        word = {"simplify": "Easy", "improve": "Clear", "synthesize": "Fresh"}[op]
        return f"{P.FINAL_OPEN}{word}: {sample} (hints {user.count(P.HINT_OPEN)}){P.FINAL_CLOSE}"


def vector_of(text: str) -> np.ndarray:
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def fake_scorers() -> GateScorers:
    """Easy prompts have lower loss, Clear prompts a higher rating; embeddings are random per prompt (far apart)."""
    def prompt(sample):
        return sample["messages"][-2]["content"]

    return GateScorers(
        loss=lambda samples: {s["id"]: 1.0 if prompt(s).startswith("Easy") else 2.0 for s in samples},
        rate=lambda samples: {s["id"]: 8.0 if prompt(s).startswith("Clear") else 3.0 for s in samples},
        embed=lambda samples: np.stack([vector_of(prompt(s)) for s in samples]),
    )


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    """D(r-1) of 6 samples (0 hard, 1 low quality, 2 sparse), its flags, neighbours and embeddings, on disk."""
    messages = [[{"role": "user", "content": p}, {"role": "assistant", "content": f"reply {i}"}]
                for i, p in enumerate(PROMPTS)]
    ids = [sample_id(m) for m in messages]
    frame = pl.DataFrame({"id": ids, "messages": messages, "source": "seed.jsonl", "round": 0, "parent": None,
                          "op": "seed", "meta": json.dumps({"family": "demo"})}).cast(dict(SAMPLE_SCHEMA))
    paths = {name: tmp_path / "in" / f"{name}.parquet" for name in ("data", "flags", "knn")}
    write_samples(frame, paths["data"])
    flag = [[i == 0 for i in range(6)], [i == 2 for i in range(6)], [i == 1 for i in range(6)]]
    pl.DataFrame({"id": ids, "hard": flag[0], "sparse": flag[1], "low_quality": flag[2],
                  "reasons": [[] for _ in ids]}).write_parquet(paths["flags"])
    pl.DataFrame({"id": ids, "knn_sim": [0.9] * 6, "neighbor_ids": [[ids[(i + 1) % 6], ids[(i + 2) % 6]]
                                                                    for i in range(6)]}).write_parquet(paths["knn"])
    paths["embeddings"] = save_embeddings(tmp_path / "in" / "embeddings", ids, np.stack([vector_of(p)
                                                                                          for p in PROMPTS]))
    paths["out"] = tmp_path / "out"
    paths["cache"] = tmp_path / "cache" / "teacher.sqlite"
    return paths


def teacher_config(server: ChatServer, world, **overrides) -> TeacherConfig:
    values = dict(backend="openai", base_url=server.base_url, model="scripted", api_key_env=KEY_ENV,
                  cache_path=str(world["cache"]), concurrency=4, max_retries=3, backoff_base_s=0.01,
                  backoff_max_s=0.05, timeout_s=5.0, temperature=0.0)
    return TeacherConfig(**{**values, **overrides})


def refine_paths(world) -> RefinePaths:
    out = world["out"]
    return RefinePaths(world["data"], world["flags"], world["knn"], world["embeddings"], "unused-base",
                       Path("unused-model"), 1,
                       out / "dataset.parquet", out / "refine.json", out / "refine_log.parquet")


def refine(world, teacher_cfg: TeacherConfig, centered: bool = True, **refine_overrides):
    judge = Judge(JudgeConfig(), "unused-model", ModelConfig(base="unused"))
    with make_teacher(teacher_cfg) as teacher:
        return run_refine(refine_paths(world), teacher, RefineConfig(**refine_overrides), judge, centered,
                          teacher_cfg.temperature, EmbedConfig(), scorers=fake_scorers())


def assert_conserved(world) -> pl.DataFrame:
    before, after = read_samples(world["data"]), read_samples(world["out"] / "dataset.parquet")
    check_conservation(before["id"].to_list(), after)  # an independent check of the written file
    return after


def test_happy_path_all_three_operations(world, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with ChatServer(ScriptedTeacher()) as server:
        result = refine(world, teacher_config(server, world))
        assert server.stats.total == 6  # 3 prompts in one phase, 3 responses in the next
        assert set(server.stats.authorizations) == {f"Bearer {SECRET}"}
    after = assert_conserved(world)
    before_ids = read_samples(world["data"])["id"].to_list()
    assert after.height == 7  # two replaced, one added
    children = after.filter(pl.col("round") == 1)
    assert dict(zip(children["op"], children["parent"], strict=True)) == {
        "simplify": before_ids[0], "improve": before_ids[1], "synthesize": before_ids[2]}
    assert before_ids[0] not in after["id"] and before_ids[2] in after["id"]
    synth = children.filter(pl.col("op") == "synthesize").row(0, named=True)
    assert synth["messages"][0]["content"] == f"Fresh: {PROMPTS[2]} (hints 2)"
    assert synth["messages"][1]["content"] == f"The answer to: Fresh: {PROMPTS[2]} (hints 2)"
    assert synth["id"] == sample_id(synth["messages"]) and synth["source"] == "seed.jsonl"
    assert json.loads(synth["meta"])["family"] == "demo"
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"] == {"requested": 3, "accepted": 3, "rejected": 0, "teacher_failures": 0, "unparsed": 0}
    assert metrics["dataset"] == {"kept": 4, "replaced": 2, "added": 1, "before": 6, "after": 7}
    assert metrics["teacher_usage"]["tokens"]["simplify"]["completion_tokens"] > 0
    log = pl.read_parquet(world["out"] / "refine_log.parquet")
    assert log["outcome"].to_list() == ["accepted"] * 3 and result.metrics == metrics


@pytest.mark.parametrize("both", ["simplify", "both"])
def test_a_hard_and_low_quality_sample_gets_one_or_two_children(world, monkeypatch, both):
    """`refine.hard_and_low_quality: both` (the reference's): a simplified and an improved child, both replacing
    the parent; D(r) stays conserved and deterministic."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    flags = pl.read_parquet(world["flags"]).with_columns(pl.col("low_quality") | pl.col("hard"))
    flags.write_parquet(world["flags"])
    with ChatServer(ScriptedTeacher()) as server:
        refine(world, teacher_config(server, world), hard_and_low_quality=both)
    after = assert_conserved(world)
    parent = read_samples(world["data"])["id"][0]
    ops = after.filter(pl.col("parent") == parent)["op"].to_list()
    assert ops == (["simplify", "improve"] if both == "both" else ["simplify"])
    assert after["id"][: len(ops)].to_list() == after.filter(pl.col("parent") == parent)["id"].to_list()
    counts = json.loads((world["out"] / "refine.json").read_text())["dataset"]
    assert counts == {"kept": 4, "replaced": 2, "added": 1 + (both == "both"), "before": 6,
                      "after": 7 + (both == "both")}


def test_prompt_only_requests_reach_the_teacher_without_the_response(world, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    bodies = []

    def record(op, body, nth):
        bodies.append((op, body["messages"][-1]["content"]))
        if op not in ("simplify", "improve"):
            return None
        word = "Easy" if op == "simplify" else "Clear"
        sample = between(body["messages"][-1]["content"], P.SAMPLE_OPEN, P.SAMPLE_CLOSE)
        return f"{P.FINAL_OPEN}{word}: {sample}{P.FINAL_CLOSE}"

    with ChatServer(ScriptedTeacher(record)) as server:
        refine(world, teacher_config(server, world), show_response=False)
    rewrites = [user for op, user in bodies if op in ("simplify", "improve")]
    assert len(rewrites) == 2 and not any(P.RESPONSE_OPEN in user or "reply " in user for user in rewrites)
    assert_conserved(world)


@pytest.mark.parametrize("centered", [True, False])
def test_synthesize_density_is_measured_in_the_cluster_stage_geometry(world, monkeypatch, centered):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with ChatServer(ScriptedTeacher()) as server:
        refine(world, teacher_config(server, world), centered=centered)
    log = pl.read_parquet(world["out"] / "refine_log.parquet").filter(pl.col("op") == "synthesize")
    measured = json.loads(log["scores"][0])["knn_sim"]
    vectors = np.stack([vector_of(p) for p in PROMPTS]).astype(np.float64)
    child = vector_of(f"Fresh: {PROMPTS[2]} (hints 2)").astype(np.float64)
    if centered:
        mean = vectors.mean(axis=0)
        vectors, child = vectors - mean, child - mean
    cosines = vectors @ child / np.linalg.norm(vectors, axis=1) / np.linalg.norm(child)
    assert measured == pytest.approx(np.sort(cosines)[-2:].mean(), abs=1e-5)  # k = 2 neighbours in the knn table


def test_rate_limit_with_retry_after_then_success(world):
    def fault(op, body, nth):
        return Reply("slow down", status=429, headers={"Retry-After": "1"}) if nth == 0 and op == "improve" else None

    with ChatServer(ScriptedTeacher(fault)) as server:
        refine(world, teacher_config(server, world))
        assert server.stats.by_status[429] == 1 and server.stats.by_status[200] == 6
        first, second = [t for t, b in zip(server.stats.arrivals, server.stats.bodies, strict=True)
                         if operation(b) == "improve"]
        assert second - first >= 0.9  # Retry-After honoured
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"]["accepted"] == 3 and metrics["teacher_usage"]["retries"] == 1
    assert_conserved(world)


def test_server_errors_then_success(world):
    with ChatServer(ScriptedTeacher(lambda op, body, nth: Reply("boom", status=500) if nth < 2 else None)) as server:
        refine(world, teacher_config(server, world))
        assert server.stats.by_status[500] == 12 and server.stats.by_status[200] == 6
    assert json.loads((world["out"] / "refine.json").read_text())["total"]["accepted"] == 3
    assert_conserved(world)


def test_timeout_is_retried(world):
    def fault(op, body, nth):
        return Reply(delay_s=1.5) if nth == 0 and op == "simplify" else None

    with ChatServer(ScriptedTeacher(fault)) as server:
        refine(world, teacher_config(server, world, timeout_s=0.5))
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"]["accepted"] == 3 and metrics["teacher_usage"]["retries"] >= 1
    assert_conserved(world)


def test_replies_without_marker_or_empty_keep_the_parent(world):
    def fault(op, body, nth):
        return {"simplify": "Here is an easier task: add 1 and 2.", "improve": f"{P.FINAL_OPEN}  {P.FINAL_CLOSE}",
                "synthesize": None}[op] if op != P.RESPOND else None

    with ChatServer(ScriptedTeacher(fault)) as server:
        refine(world, teacher_config(server, world), max_failure_rate=1.0)
    after = assert_conserved(world)
    before_ids = read_samples(world["data"])["id"].to_list()
    assert before_ids[0] in after["id"] and before_ids[1] in after["id"]
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["ops"]["simplify"]["unparsed"] == 1 and metrics["ops"]["improve"]["unparsed"] == 1
    assert metrics["ops"]["synthesize"]["accepted"] == 1
    kept = json.loads(after.filter(pl.col("id") == before_ids[1])["meta"][0])["refine"]["attempts"][0]
    assert kept["outcome"] == "unparsed" and "empty" in kept["reason"]


def test_gate_off_accepts_what_the_gate_rejects(world):
    def fault(op, body, nth):
        return f"{P.FINAL_OPEN}Muddled task{P.FINAL_CLOSE}" if op == "improve" else None

    for gate in (True, False):
        with ChatServer(ScriptedTeacher(fault)) as server:
            refine(world, teacher_config(server, world), gate=gate)
        improve = json.loads((world["out"] / "refine.json").read_text())["ops"]["improve"]
        assert (improve["accepted"], improve["rejected_by"]["signal"]) == ((0, 1) if gate else (1, 0))
        assert_conserved(world)


def test_an_empty_response_counts_as_a_failure(world):
    with ChatServer(ScriptedTeacher(lambda op, body, nth: "" if op == P.RESPOND else None)) as server:
        refine(world, teacher_config(server, world, max_retries=1), max_failure_rate=1.0)
    metrics = json.loads((world["out"] / "refine.json").read_text())
    failed = metrics["total"]["unparsed"] + metrics["total"]["teacher_failures"]
    assert metrics["total"]["accepted"] == 0 and failed == 3
    assert assert_conserved(world).height == 6


def dead_url() -> str:
    server = ChatServer(ScriptedTeacher()).start()
    url = server.base_url
    server.stop()
    return url


def test_endpoint_down_keeps_every_parent(world):
    cfg = TeacherConfig(backend="openai", base_url=dead_url(), model="m", api_key_env=KEY_ENV,
                        cache_path=str(world["cache"]), max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02)
    refine(world, cfg, max_failure_rate=1.0)  # the default fails the stage: test_refine_failure_rate.py
    after = assert_conserved(world)
    assert after["id"].to_list() == read_samples(world["data"])["id"].to_list()
    metrics = json.loads((world["out"] / "refine.json").read_text())
    assert metrics["total"]["teacher_failures"] == 3
    assert metrics["ops"]["synthesize"]["teacher_failures_by_phase"] == {"prompt": 1, "response": 0}


def test_endpoint_down_fails_loudly_when_asked(world):
    cfg = TeacherConfig(backend="openai", base_url=dead_url(), model="m", api_key_env=KEY_ENV,
                        cache_path=str(world["cache"]), max_retries=0)
    with pytest.raises(TeacherFailure, match="3 teacher calls of the prompt phase failed"):
        refine(world, cfg, on_teacher_failure="fail")
    assert not (world["out"] / "dataset.parquet").exists()


def test_rerun_after_interruption_sends_no_request_twice(world):
    broken = ScriptedTeacher(lambda op, body, nth: Reply("down", status=503) if op == P.RESPOND else None)
    with ChatServer(broken) as server:
        with pytest.raises(TeacherFailure, match="response phase"):
            refine(world, teacher_config(server, world, max_retries=0), on_teacher_failure="fail")
        answered = {json.dumps(b["messages"]) for b in server.stats.bodies if operation(b) != P.RESPOND}
        server.stats.reset()
        server.handler = ScriptedTeacher()
        refine(world, teacher_config(server, world, max_retries=0), on_teacher_failure="fail")
        second_run = [json.dumps(b["messages"]) for b in server.stats.bodies]
        assert [operation(b) for b in server.stats.bodies] == [P.RESPOND] * 3  # prompts came from the cache
        server.stats.reset()
        refine(world, teacher_config(server, world, max_retries=0))
        assert server.stats.total == 0  # everything paid for once
    assert len(answered) == 3 and not answered & set(second_run)
    assert_conserved(world)


def test_api_key_is_written_nowhere(world, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SECRET)
    def fault(op, body, nth):
        return Reply(f"invalid key {SECRET}", status=401) if op == "synthesize" else None  # a server echoing it

    with ChatServer(ScriptedTeacher(fault)) as server:
        refine(world, teacher_config(server, world), max_failure_rate=1.0)
        assert f"Bearer {SECRET}" in server.stats.authorizations  # the key was used ...
    files = [p for p in world["out"].parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and (world["out"] / "dataset.parquet") in files
    for path in files:  # ... and appears in no output, log table, metrics or cache file
        assert SECRET.encode() not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert SECRET not in caplog.text + captured.out + captured.err
    log = pl.read_parquet(world["out"] / "refine_log.parquet").filter(pl.col("op") == "synthesize")
    assert "invalid key" in log["reason"][0]  # the echoed message was recorded, without the key
    assert_conserved(world)


def test_stage_end_to_end_with_the_real_model_and_judge(world, tiny_model_dir, tmp_path):
    """stages.refine.main with M0 = Mr = a tiny real model: child losses under M0, embeddings under Mr, ratings by
    the judge."""
    import yaml

    from middo.model.forward import score_forward
    from middo.model.load import load_model
    from stages.refine import main

    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    previous = read_samples(world["data"])
    forward = score_forward(model, tokenizer, previous.select("id", "messages").to_dicts(), 4096, progress=False)
    save_embeddings(world["embeddings"], forward.ids, forward.embeddings)  # D(r-1) under the same Mr
    with ChatServer(ScriptedTeacher()) as server:
        params = {"model": {"base": str(tiny_model_dir), "device": "cpu", "max_length": 256},
                  "refine": {"dup_threshold": 0.9999, "token_budget": 2048},
                  "teacher": {"backend": "openai", "base_url": server.base_url, "model": "scripted",
                              "api_key_env": KEY_ENV, "cache_path": str(world["cache"])},
                  # the untrained tiny judge puts ~3% on the score tokens: keep its ratings, this test is the wiring
                  "judge": {"mode": "logits", "token_budget": 2048, "min_score_mass": 0.0}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        out = world["out"]
        main(["--data", str(world["data"]), "--flags", str(world["flags"]), "--knn", str(world["knn"]),
              "--embeddings", str(world["embeddings"]), "--base", str(tiny_model_dir), "--model", str(tiny_model_dir),
              "--round", "1",
              "--output", str(out / "dataset.parquet"), "--metrics", str(out / "refine.json"),
              "--log", str(out / "log.parquet"), "--params", str(tmp_path / "params.yaml")])
    assert_conserved(world)
    log = pl.read_parquet(out / "log.parquet")
    assert set(log["outcome"]) <= {"accepted", "rejected"} and log.height == 3
    scores = {row["op"]: json.loads(row["scores"]) for row in log.iter_rows(named=True)}
    for op, keys in {"simplify": ("loss", "parent_loss"), "improve": ("quality", "parent_quality"),
                     "synthesize": ("knn_sim", "max_cos")}.items():
        if scores[op].get("max_cos", 0) <= 0.9999:  # not stopped earlier as a near-duplicate
            assert all(isinstance(scores[op][key], float) for key in keys), scores[op]


def test_killed_run_resumes_without_paying_twice(world, tmp_path):
    """The stage process is killed while its responses are in flight; the re-run asks only for those."""
    import os
    import subprocess
    import sys
    import time

    import yaml

    def stall(op, body, nth):
        return Reply(delay_s=20) if op == P.RESPOND else None

    repo = Path(__file__).resolve().parents[1]
    with ChatServer(ScriptedTeacher(stall)) as server:
        params = {"model": {"base": "never-loaded"}, "refine": {},
                  "teacher": {"backend": "openai", "base_url": server.base_url, "model": "scripted",
                              "api_key_env": KEY_ENV, "cache_path": str(world["cache"]), "temperature": 0.0}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        out = world["out"]
        command = [sys.executable, "-m", "stages.refine", "--data", str(world["data"]), "--flags", str(world["flags"]),
                   "--knn", str(world["knn"]), "--embeddings", str(world["embeddings"]), "--base", "never-loaded",
                   "--model", "never-loaded", "--round", "1", "--output", str(out / "dataset.parquet"),
                   "--metrics", str(out / "refine.json"), "--params", str(tmp_path / "params.yaml")]
        process = subprocess.Popen(command, cwd=repo, env={**os.environ, KEY_ENV: SECRET},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not any(operation(b) == P.RESPOND for b in list(server.stats.bodies)):
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the stage never reached the response phase"
                time.sleep(0.1)
        finally:
            process.kill()
            process.wait()
        assert not (out / "dataset.parquet").exists()
        assert [operation(b) for b in server.stats.bodies].count("simplify") == 1
        server.stats.reset()
        server.handler = ScriptedTeacher()
        refine(world, teacher_config(server, world))
        assert sorted(operation(b) for b in server.stats.bodies) == [P.RESPOND] * 3
    assert json.loads((out / "refine.json").read_text())["total"]["accepted"] == 3
    assert_conserved(world)
