"""The API key is sent to the endpoint and appears nowhere else: files, logs, output, reprs, usage, errors."""

from __future__ import annotations

import json
import logging

from middo.log import write_metrics
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.server import ChatServer, Reply

KEY = "sk-middo-test-7f3a9c1e-DO-NOT-LEAK"


def test_key_never_leaves_the_authorization_header(tmp_path, monkeypatch, caplog, capfd):
    monkeypatch.setenv("MIDDO_SECRET_KEY", KEY)
    for name in ("middo", "openai", "httpx", "httpcore", ""):
        caplog.set_level(logging.DEBUG, logger=name)

    def handler(body):
        text = body["messages"][0]["content"]
        if text == "leak":  # a careless server that echoes the credential in its error message
            return Reply(f"invalid key {server.stats.authorizations[-1]}", status=401)
        if text == "flaky" and server.stats.by_status[500] == 0:
            return Reply(f"oops {server.stats.authorizations[-1]}", status=500)
        return Reply("fine", top_logprobs=[{"fine": -0.1}])

    cfg = TeacherConfig(backend="openai", model="loop", api_key_env="MIDDO_SECRET_KEY", concurrency=1,
                        backoff_base_s=0.01, backoff_max_s=0.02, cache_path=str(tmp_path / "cache" / "t.sqlite"))
    with ChatServer(handler) as server:
        cfg = TeacherConfig(**{**cfg.__dict__, "base_url": server.base_url})
        teacher = make_teacher(cfg)
        requests = [ChatRequest([{"role": "user", "content": text}], 0.0, 8, "judge", logprobs=1)
                    for text in ("ok", "leak", "flaky")]
        replies = teacher.complete(requests)
    assert server.stats.authorizations[0] == f"Bearer {KEY}"  # the key was really in use
    assert replies[0].text == "fine" and replies[2].text == "fine"
    assert replies[1].error.startswith("client_error: HTTP 401") and "***" in replies[1].error

    write_metrics({"teacher": teacher.usage()}, tmp_path / "metrics.json")
    (tmp_path / "replies.json").write_text(json.dumps([reply.__dict__ for reply in replies]))
    output = capfd.readouterr()
    texts = {
        "logs": caplog.text + "\n".join(str(record.args) for record in caplog.records),
        "stdout": output.out, "stderr": output.err,
        "reprs": repr(teacher) + repr(cfg) + repr(replies) + repr(teacher.usage()),
    }
    assert "HTTP Request" in caplog.text or caplog.records  # logs were captured at DEBUG
    for where, text in texts.items():
        assert KEY not in text, f"API key found in {where}"
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".sqlite" for path in written)
    for path in written:
        assert KEY.encode() not in path.read_bytes(), f"API key found in {path}"
