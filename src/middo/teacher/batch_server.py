"""The loopback server's files and batches endpoints: an OpenAI Batch API that answers each line with the handler.

Routes (under /v1): `POST /files` (multipart, purpose `batch`), `GET /files/{id}`, `GET /files/{id}/content`,
`POST /batches`, `GET /batches/{id}`, `POST /batches/{id}/cancel`. A batch goes validating -> in_progress ->
finalizing -> completed in a background thread; lines the handler answers with a non-200 status go to the error
file. Scripted for tests: `hold` keeps batches in_progress until `release()`, `expire_after=n` expires a batch after
n lines (the rest come back as `batch_expired` errors), `fail_batches` fails the next n batches at validation.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from middo.teacher.wire import Reply, check_request, completion_body, error_body

CHAT_ENDPOINT = "/v1/chat/completions"


@dataclass
class StoredBatch:
    """One batch object as the server keeps it."""

    id: str
    input_file_id: str
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    errors: list[dict[str, Any]] = field(default_factory=list)
    served_s: float = 0.0
    """Seconds the server spent running this batch (validation to the end)."""

    def body(self) -> dict[str, Any]:
        """The OpenAI `batch` object."""
        return {"id": self.id, "object": "batch", "endpoint": CHAT_ENDPOINT, "input_file_id": self.input_file_id,
                "completion_window": "24h", "status": self.status, "output_file_id": self.output_file_id,
                "error_file_id": self.error_file_id, "created_at": int(self.created_at),
                "request_counts": dict(self.counts),
                "errors": {"object": "list", "data": self.errors} if self.errors else None}


class BatchStore:
    """Files and batches of one loopback server; `answer(body) -> Reply` runs the server's handler."""

    def __init__(self, answer, model: str) -> None:
        self.answer = answer
        self.model = model
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, StoredBatch] = {}
        self.submissions = 0
        """Batches created (a re-run that resubmits shows here)."""
        self.hold = threading.Event()
        self.expire_after: int | None = None
        self.fail_batches = 0
        self._lock = threading.Lock()

    def release(self) -> None:
        """Let held batches run."""
        self.hold.clear()

    def route(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for a files or batches request."""
        parts = path.split("?", 1)[0].rstrip("/").split("/")
        tail = parts[parts.index("v1") + 1:] if "v1" in parts else parts[1:]
        if method == "POST" and tail == ["files"]:
            return self._upload(headers.get("Content-Type") or "", raw)
        if method == "GET" and len(tail) == 3 and tail[0] == "files" and tail[2] == "content":
            if tail[1] not in self.files:
                return _json(404, error_body(f"no file {tail[1]}", 404))
            return 200, self.files[tail[1]], "application/octet-stream"
        if method == "GET" and len(tail) == 2 and tail[0] == "files" and tail[1] in self.files:
            return _json(200, self._file_body(tail[1], "batch"))
        if method == "POST" and tail == ["batches"]:
            return self._create(json.loads(raw or b"{}"))
        if len(tail) >= 2 and tail[0] == "batches" and tail[1] in self.batches:
            batch = self.batches[tail[1]]
            if method == "POST" and tail[2:] == ["cancel"]:
                batch.status = "cancelled"
            return _json(200, batch.body())
        return _json(404, error_body(f"no route {method} {path}", 404))

    def _file_body(self, file_id: str, purpose: str) -> dict[str, Any]:
        return {"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": int(time.time()),
                "filename": f"{file_id}.jsonl", "purpose": purpose, "status": "processed"}

    def _upload(self, content_type: str, raw: bytes) -> tuple[int, bytes, str]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.iter_parts()} if message.is_multipart() else {}
        if "file" not in fields:
            return _json(400, error_body("upload needs a multipart `file` field", 400))
        file_id = self._store(fields["file"])
        purpose = (fields.get("purpose") or b"").decode()
        return _json(200, self._file_body(file_id, purpose))

    def _store(self, data: bytes) -> str:
        file_id = f"file-{uuid.uuid4().hex[:20]}"
        self.files[file_id] = data
        return file_id

    def _create(self, body: dict[str, Any]) -> tuple[int, bytes, str]:
        if body.get("input_file_id") not in self.files:
            return _json(400, error_body(f"no input file {body.get('input_file_id')!r}", 400))
        if body.get("endpoint") != CHAT_ENDPOINT:
            return _json(400, error_body(f"endpoint {body.get('endpoint')!r}: only {CHAT_ENDPOINT}", 400))
        with self._lock:
            self.submissions += 1
            batch = StoredBatch(f"batch_{uuid.uuid4().hex[:20]}", body["input_file_id"])
            self.batches[batch.id] = batch
            fail, self.fail_batches = self.fail_batches > 0, max(0, self.fail_batches - 1)
        threading.Thread(target=self._run, args=(batch, fail), daemon=True, name=batch.id).start()
        return _json(200, batch.body())

    def _run(self, batch: StoredBatch, fail: bool) -> None:
        """Answer every line of the batch's input file, then write its output and error files."""
        started = time.perf_counter()
        lines = [json.loads(line) for line in self.files[batch.input_file_id].splitlines() if line.strip()]
        if fail:
            batch.errors = [{"code": "invalid_request", "message": "scripted validation failure", "line": None}]
            batch.status = "failed"
            return
        batch.counts["total"] = len(lines)
        batch.status = "in_progress"
        while self.hold.is_set():
            time.sleep(0.01)
        outputs, failures = [], []
        for number, line in enumerate(lines):
            if self.expire_after is not None and number >= self.expire_after:
                failures.append(_line(line, None, {"code": "batch_expired", "message": "batch expired"}))
                continue
            body = line.get("body") or {}
            reply = check_request(body) or self._answer(body)
            if reply.status == 200:
                outputs.append(_line(line, {"status_code": 200, "request_id": uuid.uuid4().hex,
                                            "body": completion_body(body, reply, self.model)}, None))
            else:
                failures.append(_line(line, {"status_code": reply.status, "request_id": uuid.uuid4().hex,
                                             "body": error_body(reply.content, reply.status)}, None))
        batch.counts.update(completed=len(outputs), failed=len(failures))
        batch.status = "finalizing"
        batch.output_file_id = self._store(_jsonl(outputs)) if outputs else None
        batch.error_file_id = self._store(_jsonl(failures)) if failures else None
        batch.served_s = time.perf_counter() - started
        batch.status = "expired" if self.expire_after is not None and self.expire_after < len(lines) else "completed"

    def _answer(self, body: dict[str, Any]) -> Reply:
        reply = self.answer(body)
        return Reply(content=reply) if isinstance(reply, str) else reply


def _line(line: dict[str, Any], response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"batch_req_{uuid.uuid4().hex[:20]}", "custom_id": line.get("custom_id"), "response": response,
            "error": error}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def _json(status: int, payload: dict[str, Any]) -> tuple[int, bytes, str]:
    return status, json.dumps(payload).encode("utf-8"), "application/json"
