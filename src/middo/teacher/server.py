"""A small real OpenAI-compatible chat server on 127.0.0.1, scripted by a handler (tests, bench, simulated teacher).

```python
with ChatServer(lambda request: Reply(content="hi")) as server:
    client = OpenAI(base_url=server.base_url, api_key="EMPTY")
```
The handler gets the request JSON and returns a `Reply` (or a plain string): content, status code, headers
(e.g. `Retry-After`), a delay before answering, a dropped connection, per-position top logprobs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from middo.log import get_logger
from middo.teacher.batch_server import BatchStore
from middo.teacher.wire import Reply, check_request, completion_body, error_body

log = get_logger(__name__)

__all__ = ["ChatServer", "Handler", "Reply", "ServerStats"]  # Reply lives in wire.py, imported from here


Handler = Callable[[dict[str, Any]], Reply | str]


class ServerStats:
    """Thread-safe counters of chat requests: total, per status, dropped, in flight now and at most; and per
    request its body, arrival time (`time.monotonic()`) and Authorization header."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.dropped = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.authorizations: list[str] = []

    def start(self, body: dict[str, Any], authorization: str = "") -> None:
        with self._lock:
            self.total += 1
            self.bodies.append(body)
            self.arrivals.append(time.monotonic())
            self.authorizations.append(authorization)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finish(self, status: int | None) -> None:
        with self._lock:
            self.in_flight -= 1
            if status is None:
                self.dropped += 1
            else:
                self.by_status[status] += 1

    def reset(self) -> None:
        """Zero every counter (e.g. between two runs of one test)."""
        with self._lock:
            self.total, self.dropped, self.max_in_flight = 0, 0, self.in_flight
            self.by_status.clear()
            self.bodies.clear()
            self.arrivals.clear()
            self.authorizations.clear()


class ChatServer:
    """A threading HTTP server on 127.0.0.1 and an ephemeral port serving `/v1/chat/completions`, `/v1/models`, and
    the Batch API's `/v1/files` and `/v1/batches`."""

    def __init__(self, handler: Handler, model: str = "loopback-model", port: int = 0) -> None:
        self.handler = handler
        self.model = model
        self.stats = ServerStats()
        self.batches = BatchStore(self.answer, model)
        """The files and batches endpoints (`middo.teacher.batch_server`)."""
        self._httpd = _Server(("127.0.0.1", port), _make_request_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """The OpenAI `base_url` of this server (ends in `/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatServer:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chat-server", daemon=True)  # short poll: stop() returns quickly
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (connections in progress are abandoned)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self, body: dict[str, Any]) -> Reply:
        """Run the handler; a plain string becomes a 200 reply, a handler that raises a logged 500."""
        try:
            reply = self.handler(body)
        except Exception as exc:  # a real server answers 500 and keeps serving; the traceback is logged
            log.exception("loopback handler failed")
            return Reply(content=f"handler error: {type(exc).__name__}: {exc}", status=500)
        return Reply(content=reply) if isinstance(reply, str) else reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512  # the default (5) refuses connections under a burst of concurrent clients


def _make_request_handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client expects
        disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests count, not log
            return

        def _batch_route(self, method: str, raw: bytes = b"") -> bool:
            """Serve a files or batches request; False for any other path."""
            if "/files" not in self.path and "/batches" not in self.path:
                return False
            status, data, content_type = server.batches.route(method, self.path, self.headers, raw)
            self._send_bytes(status, data, content_type)
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if self._batch_route("GET"):
                return
            if self.path.rstrip("/").endswith("/models"):
                data = [{"id": server.model, "object": "model", "created": 0, "owned_by": "loopback"}]
                self._send(200, {"object": "list", "data": data})
            else:
                self._send(404, error_body(f"no route GET {self.path}", 404))

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self._batch_route("POST", raw):
                return
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                self._send(400, error_body(f"request body is not JSON: {exc}", 400))
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, error_body(f"no route POST {self.path}", 404))
                return
            server.stats.start(body, self.headers.get("Authorization") or "")
            status: int | None = None
            try:
                reply = check_request(body) or server.answer(body)
                if reply.delay_s > 0:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self._drop()
                    return
                status = reply.status
                payload = completion_body(body, reply, server.model) if status == 200 else error_body(
                    reply.content or f"scripted status {status}", status)
                self._send(status, payload, reply.headers)
            except (BrokenPipeError, ConnectionResetError):
                status = None  # the client gave up (e.g. its timeout) before the reply was written
                self.close_connection = True
            finally:
                server.stats.finish(status)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already be gone
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_bytes(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

        def _send_bytes(self, status: int, data: bytes, content_type: str,
                        headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return RequestHandler
