"""`teacher.mode: batch`: a phase's uncached requests as one OpenAI Batch (also the input of `vllm run-batch`).

Each line is `{"custom_id": <request cache key>, "method": "POST", "url": "/v1/chat/completions", "body": ...}`;
output lines `{"custom_id", "response": {"status_code", "body": <chat.completion>}, "error"}` fill the request
cache by `custom_id`. The id of a submitted batch is saved next to the cache (`<cache_path>.batches.json`, keyed by
the set of request keys) before waiting, so a stage killed while it waits finds the same batch when re-run: it
downloads that batch instead of submitting (and paying for) the requests again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from middo.errors import MiddoError
from middo.log import get_logger
from middo.teacher.cache import ReplyCache
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatReply, ChatRequest, failed

if TYPE_CHECKING:
    from middo.teacher.client import OpenAITeacher

log = get_logger(__name__)

CHAT_URL = "/v1/chat/completions"
DONE = {"completed", "expired", "cancelled"}
RETRIED_CODES = {"batch_expired", "missing"}


class BatchError(MiddoError):
    """A batch the endpoint refused or failed as a whole."""


def batch_lines(cfg: TeacherConfig, requests: list[ChatRequest], keys: list[str]) -> bytes:
    """The Batch JSONL of `requests` (custom_id = cache key)."""
    from middo.teacher.client import request_body

    rows = ({"custom_id": key, "method": "POST", "url": CHAT_URL, "body": request_body(cfg, request)}
            for request, key in zip(requests, keys, strict=True))
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def set_key(keys: list[str]) -> str:
    """Key of a set of requests (order-free): the pending-batch record's key."""
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()


class PendingBatches:
    """Submitted, not yet downloaded batches: `<cache_path>.batches.json`, {set key: {batch_id, ...}}."""

    def __init__(self, cache_path: str) -> None:
        self.path = Path(f"{cache_path}.batches.json")

    def read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str) -> str | None:
        entry = self.read().get(key)
        return None if entry is None else entry["batch_id"]

    def put(self, key: str, batch_id: str, size: int) -> None:
        self._write({**self.read(), key: {"batch_id": batch_id, "requests": size, "submitted_at": time.time()}})

    def drop(self, key: str) -> None:
        entries = self.read()
        entries.pop(key, None)
        self._write(entries)

    def _write(self, entries: dict[str, Any]) -> None:
        """Atomic: a crash never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(entries, indent=1))
        os.replace(partial, self.path)


def send_batch(teacher: OpenAITeacher, requests: list[ChatRequest], keys: list[str],
               retry_round: bool = False) -> list[ChatReply]:
    """Replies to `requests` through one batch (or the pending one for the same set); failed lines are retried once,
    live or in a new batch (`teacher.batch_retry`)."""
    cfg = teacher.cfg
    # the caps admit each request at its worst case, in order: the batch holds only those that fit, the rest are
    # `budget` failures (no reply settles a reservation before the batch is back)
    allowed = [teacher.budget.reserve(request) for request in requests]
    replies: dict[str, ChatReply] = {}
    for request, key, ok in zip(requests, keys, allowed, strict=True):
        if not ok:
            replies[key] = failed("budget", f"not sent: {teacher.budget.stopped} reached")
            teacher._usage.record(request, replies[key])  # counted as a live run counts it (not as a request)
    sent = [(request, key) for request, key, ok in zip(requests, keys, allowed, strict=True) if ok]
    if sent:
        results = run_batch(teacher, [r for r, _ in sent], [k for _, k in sent])
        retry = []
        teacher.cache.put_many([(key, results[key]) for _, key in sent if key in results])
        for request, key in sent:
            reply = results.get(key) or failed("batch", "missing: no line for this request in the batch output")
            teacher.budget.settle(request, reply.prompt_tokens, reply.completion_tokens)
            if not reply.ok and _retryable(reply) and not retry_round:
                retry.append((request, key))
            else:
                teacher._usage.add_attempt()
                teacher._usage.record(request, reply)
                replies[key] = reply
        if retry:
            log.info("batch: %d requests failed or expired; retrying them %s", len(retry),
                     "live" if cfg.batch_retry == "live" else "in a new batch")
            again = ([r for r, _ in retry], [k for _, k in retry])
            fresh = (teacher.send_live(*again) if cfg.batch_retry == "live"
                     else send_batch(teacher, *again, retry_round=True))
            replies.update(zip(again[1], fresh, strict=True))
    return [replies[key] for key in keys]


def _retryable(reply: ChatReply) -> bool:
    detail = reply.error or ""
    return reply.error_kind in ("rate_limit", "server_error", "timeout") or any(c in detail for c in RETRIED_CODES)


def run_batch(teacher: OpenAITeacher, requests: list[ChatRequest], keys: list[str]) -> dict[str, ChatReply]:
    """Submit (or find pending), wait for and download one batch: replies by custom_id."""
    cfg = teacher.cfg
    pending = PendingBatches(cfg.cache_path)
    record = set_key(keys)
    client = openai.OpenAI(base_url=cfg.base_url, api_key=teacher._api_key, timeout=cfg.timeout_s, max_retries=3)
    try:
        batch_id = pending.get(record)
        if batch_id is not None:
            log.info("batch: waiting for %s, submitted earlier for these %d requests (not submitting again)",
                     batch_id, len(keys))
        else:
            upload = client.files.create(file=("middo-batch.jsonl", batch_lines(cfg, requests, keys)),
                                         purpose="batch")
            batch_id = client.batches.create(input_file_id=upload.id, endpoint=CHAT_URL,
                                             completion_window="24h").id
            pending.put(record, batch_id, len(keys))
            log.info("batch: submitted %s (%d requests); waiting for it (a re-run waits for the same batch)",
                     batch_id, len(keys))
        batch = wait(client, batch_id, len(keys), cfg.batch_poll_s)
        if batch.status == "failed":
            pending.drop(record)
            errors = "; ".join(e.message or "" for e in (batch.errors.data if batch.errors else []) or [])
            raise BatchError(f"batch {batch_id} failed at the endpoint ({errors or 'no reason given'}); fix it and "
                             "re-run (a new batch is submitted), or set teacher.mode: live")
        results = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                results.update(read_output(client.files.content(file_id).text))
        if batch.status != "completed":
            log.warning("batch %s ended %s with %d of %d replies", batch_id, batch.status, len(results), len(keys))
        pending.drop(record)
        return results
    finally:
        client.close()


def wait(client: openai.OpenAI, batch_id: str, total: int, poll_s: float) -> Any:
    """Poll until the batch ends, showing its progress."""
    with tqdm(total=total, desc=f"batch {batch_id}", unit="req", disable=total < 16) as progress:
        while True:
            batch = client.batches.retrieve(batch_id)
            counts = batch.request_counts
            if counts is not None:
                progress.n = counts.completed + counts.failed
                progress.refresh()
            if batch.status in DONE or batch.status == "failed":
                return batch
            time.sleep(poll_s)


def read_output(text: str) -> dict[str, ChatReply]:
    """Replies by custom_id from a batch output or error file (OpenAI's or `vllm run-batch`'s)."""
    from middo.teacher.client import parse_response

    replies = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        replies[row["custom_id"]] = _reply(row, number, parse_response)
    return replies


def _reply(row: dict[str, Any], number: int, parse) -> ChatReply:
    response, error = row.get("response"), row.get("error")
    if error:
        return failed("batch", f"{error.get('code')}: {error.get('message')}")
    status = (response or {}).get("status_code")
    if status != 200:
        kind = "rate_limit" if status == 429 else "server_error" if (status or 500) >= 500 else "client_error"
        message = ((response or {}).get("body") or {}).get("error", {}).get("message", "")
        return failed(kind, f"HTTP {status} in batch line {number}: {message}"[:300])
    try:
        return parse(ChatCompletion.model_validate(response["body"]))
    except (ValueError, KeyError, TypeError) as exc:
        return failed("bad_response", f"batch line {number}: {exc}"[:300])


def load_batch_output(path: Path, cache: ReplyCache) -> tuple[int, int]:
    """Put the successful replies of a batch output file (e.g. `vllm run-batch -o`) into `cache`: (loaded, errors)."""
    replies = read_output(path.read_text(encoding="utf-8"))
    cache.put_many(list(replies.items()))
    loaded = sum(reply.ok for reply in replies.values())
    return loaded, len(replies) - loaded
