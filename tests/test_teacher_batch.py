"""`teacher.mode: batch` against the loopback server's files and batches endpoints: round trip, a re-run after a
crash while the batch is pending, partial failures, expiry, and loading a `vllm run-batch` output file."""

from __future__ import annotations

import json
import threading

import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.batch import BatchError, PendingBatches, batch_lines, load_batch_output
from middo.teacher.cache import ReplyCache, cache_key
from middo.teacher.server import ChatServer, Reply


def _cfg(server: ChatServer, tmp_path, **overrides) -> TeacherConfig:
    values = {"backend": "openai", "base_url": server.base_url, "model": "loop", "api_key_env": "MIDDO_TEST_UNSET",
              "cache_path": str(tmp_path / "cache.sqlite"), "mode": "batch", "batch_poll_s": 0.01,
              "backoff_base_s": 0.01, "backoff_max_s": 0.05, **overrides}
    return TeacherConfig(**values)


def _requests(n: int) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"prompt {i}"}], 0.0, 32, "simplify") for i in range(n)]


def _echo(body: dict) -> Reply:
    return Reply("re: " + body["messages"][-1]["content"], prompt_tokens=10, completion_tokens=3)


def test_batch_round_trip_fills_the_cache_and_sends_no_live_request(tmp_path):
    with ChatServer(_echo) as server:
        with make_teacher(_cfg(server, tmp_path)) as teacher:
            replies = teacher.complete(_requests(20))
            usage = teacher.usage()
        assert [r.text for r in replies] == [f"re: prompt {i}" for i in range(20)]
        assert server.batches.submissions == 1 and server.stats.total == 0  # no live chat request
        assert usage["requests"] == 20 and usage["prompt_tokens"] == 200
        with make_teacher(_cfg(server, tmp_path, mode="live")) as teacher:  # the live mode finds every reply cached
            again = teacher.complete(_requests(20))
        assert all(r.cached for r in again) and server.stats.total == 0
    assert PendingBatches(str(tmp_path / "cache.sqlite")).read() == {}


def test_rerun_after_a_crash_while_pending_waits_for_the_same_batch(tmp_path, caplog):
    with ChatServer(_echo) as server:
        server.batches.hold.set()
        cfg = _cfg(server, tmp_path)
        crashed = threading.Thread(target=_crash_while_waiting, args=(cfg,), daemon=True)
        crashed.start()
        crashed.join(timeout=10)
        pending = PendingBatches(cfg.cache_path).read()
        assert server.batches.submissions == 1 and len(pending) == 1
        batch_id = next(iter(pending.values()))["batch_id"]
        server.batches.release()
        with caplog.at_level("INFO", logger="middo"), make_teacher(cfg) as teacher:
            replies = teacher.complete(_requests(5))
        assert [r.text for r in replies] == [f"re: prompt {i}" for i in range(5)]
        assert server.batches.submissions == 1  # downloaded, not resubmitted
        assert f"waiting for {batch_id}" in caplog.text


def _crash_while_waiting(cfg: TeacherConfig) -> None:
    """A stage killed mid-wait: the poll raises once the batch is recorded as pending."""
    import middo.teacher.batch as batch

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    original, batch.wait = batch.wait, crash
    try:
        with make_teacher(cfg) as teacher:
            teacher.complete(_requests(5))
    except KeyboardInterrupt:
        pass
    finally:
        batch.wait = original


@pytest.mark.parametrize("retry", ["live", "batch"])
def test_partial_failures_are_retried_live_or_in_a_new_batch(tmp_path, retry):
    failed_once: set[str] = set()

    def flaky(body: dict) -> Reply:
        content = body["messages"][-1]["content"]
        if content.endswith(("3", "7")) and content not in failed_once:
            failed_once.add(content)
            return Reply("overloaded", status=503)
        if content.endswith("9"):
            return Reply("bad request", status=400)  # not retried
        return _echo(body)

    with ChatServer(flaky) as server:
        with make_teacher(_cfg(server, tmp_path, batch_retry=retry)) as teacher:
            replies = teacher.complete(_requests(10))
        texts = [r.text for r in replies]
        assert texts[:9] == [f"re: prompt {i}" for i in range(9)]
        assert replies[9].error_kind == "client_error" and "HTTP 400" in replies[9].error
        assert server.batches.submissions == (2 if retry == "batch" else 1)
        assert server.stats.total == (2 if retry == "live" else 0)


def test_expired_batch_keeps_its_replies_and_retries_the_rest(tmp_path):
    with ChatServer(_echo) as server:
        server.batches.expire_after = 4
        with make_teacher(_cfg(server, tmp_path)) as teacher:
            replies = teacher.complete(_requests(10))
        assert [r.text for r in replies] == [f"re: prompt {i}" for i in range(10)]
        assert server.stats.total == 6  # the 6 expired requests went live
        assert [b.status for b in server.batches.batches.values()] == ["expired"]


def test_a_failed_batch_is_an_error_and_the_next_run_submits_anew(tmp_path):
    with ChatServer(_echo) as server:
        server.batches.fail_batches = 1
        cfg = _cfg(server, tmp_path)
        with make_teacher(cfg) as teacher, pytest.raises(BatchError, match="teacher.mode: live"):
            teacher.complete(_requests(3))
        with make_teacher(cfg) as teacher:
            assert [r.ok for r in teacher.complete(_requests(3))] == [True] * 3
        assert server.batches.submissions == 2


def test_load_batch_reads_a_vllm_run_batch_output_into_the_cache(tmp_path):
    with ChatServer(_echo) as server:
        cfg = _cfg(server, tmp_path, mode="live")
    lines = batch_lines(cfg, _requests(3), [cache_key(cfg.base_url, cfg.model, r) for r in _requests(3)])
    output = tmp_path / "out.jsonl"
    rows = []
    for number, line in enumerate(lines.decode().splitlines()):
        request = json.loads(line)
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "loop",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"vllm {number}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
        rows.append({"id": f"vllm-{number}", "custom_id": request["custom_id"],
                     "response": {"status_code": 200, "request_id": f"r{number}", "body": body}, "error": None})
    output.write_text("".join(json.dumps(row) + "\n" for row in rows))
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"teacher": {"base_url": cfg.base_url, "model": "loop",
                                              "cache_path": cfg.cache_path}}))
    loaded = CliRunner().invoke(app, ["teacher", "load-batch", str(output), "--params", str(params)])
    assert loaded.exit_code == 0 and "loaded 3 replies" in loaded.output
    cache = ReplyCache(cfg.cache_path)
    assert load_batch_output(output, cache) == (3, 0)  # loading twice is harmless
    cache.close()
    with make_teacher(cfg) as teacher:
        replies = teacher.complete(_requests(3))
    assert [r.text for r in replies] == ["vllm 0", "vllm 1", "vllm 2"] and all(r.cached for r in replies)


def test_the_key_stays_out_of_the_pending_record_and_the_log(tmp_path, monkeypatch, caplog):
    secret = "sk-batch-test-do-not-leak"
    monkeypatch.setenv("MIDDO_TEST_BATCH_KEY", secret)
    with ChatServer(_echo) as server:
        server.batches.hold.set()
        cfg = _cfg(server, tmp_path, api_key_env="MIDDO_TEST_BATCH_KEY")
        with caplog.at_level("DEBUG", logger="middo"):
            _crash_while_waiting(cfg)
            record = PendingBatches(cfg.cache_path).path.read_text()
            server.batches.release()
            with make_teacher(cfg) as teacher:
                teacher.complete(_requests(5))
    assert secret not in record and secret not in caplog.text and secret not in repr(cfg)
