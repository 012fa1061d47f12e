"""The loopback OpenAI-compatible server: response format, scripted statuses, drops, counting, concurrency."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request

import pytest

from middo.teacher.server import ChatServer, Reply


def _post(server: ChatServer, body: dict, timeout: float = 10.0) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer EMPTY"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


CHAT = {"model": "m", "messages": [{"role": "user", "content": "two plus two"}]}


def test_chat_completion_has_the_openai_shape():
    with ChatServer(lambda body: "four") as server:
        status, _, payload = _post(server, CHAT)
    assert status == 200
    assert payload["object"] == "chat.completion" and payload["id"].startswith("chatcmpl-")
    assert payload["model"] == "m" and isinstance(payload["created"], int)
    choice = payload["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "four"}
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert payload["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}


def test_models_route_and_unknown_route():
    with ChatServer(lambda body: "x", model="teacher-7b") as server:
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as response:
            models = json.loads(response.read())
        status, _, payload = _post_to(server, "/v1/embeddings")
    assert [entry["id"] for entry in models["data"]] == ["teacher-7b"]
    assert status == 404 and "no route" in payload["error"]["message"]
    assert server.stats.total == 0  # only chat requests are counted


def _post_to(server: ChatServer, path: str) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", path, body=json.dumps(CHAT), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    result = response.status, dict(response.headers), json.loads(response.read())
    connection.close()
    return result


def test_scripted_status_headers_and_error_body_are_counted():
    replies = iter([Reply("slow down", status=429, headers={"Retry-After": "3"}), Reply("ok")])
    with ChatServer(lambda body: next(replies)) as server:
        first = _post(server, CHAT)
        second = _post(server, CHAT)
    assert first[0] == 429 and first[1]["Retry-After"] == "3"
    assert first[2]["error"]["message"] == "slow down"
    assert second[0] == 200
    assert server.stats.total == 2 and server.stats.by_status == {429: 1, 200: 1}
    assert server.stats.authorizations == ["Bearer EMPTY", "Bearer EMPTY"]


def test_logprobs_are_sent_only_when_asked_and_capped_at_top_logprobs():
    positions = [{"7": -0.2, "8": -1.9, "6": -3.0}, {"<eos>": -0.01}]
    with ChatServer(lambda body: Reply("7", top_logprobs=positions)) as server:
        _, _, plain = _post(server, CHAT)
        _, _, asked = _post(server, {**CHAT, "logprobs": True, "top_logprobs": 2})
    assert plain["choices"][0]["logprobs"] is None
    content = asked["choices"][0]["logprobs"]["content"]
    assert [position["token"] for position in content] == ["7", "<eos>"]
    assert [(c["token"], c["logprob"]) for c in content[0]["top_logprobs"]] == [("7", -0.2), ("8", -1.9)]


def test_dropped_connection_gives_no_response_and_is_counted():
    dropped = (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)
    with ChatServer(lambda body: Reply(drop=True)) as server, pytest.raises(dropped):
        _post(server, CHAT)
    assert server.stats.dropped == 1 and server.stats.by_status == {}


def test_handler_exception_becomes_a_500_and_the_server_keeps_serving():
    def handler(body):
        if body["messages"][0]["content"] == "boom":
            raise RuntimeError("scripted bug")
        return "fine"

    with ChatServer(handler) as server:
        status, _, payload = _post(server, {**CHAT, "messages": [{"role": "user", "content": "boom"}]})
        assert status == 500 and "scripted bug" in payload["error"]["message"]
        assert _post(server, CHAT)[0] == 200


def test_concurrent_requests_overlap_and_max_in_flight_is_counted():
    n_clients = 16
    # Every handler waits until all 16 are inside it: a server that serialised requests would break the barrier.
    # A barrier, not a fixed delay, so a starved machine that starts the clients slowly cannot fail the test.
    barrier = threading.Barrier(n_clients)

    def held(body):
        barrier.wait(timeout=60)
        return "done"

    with ChatServer(held) as server:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(_post(server, CHAT)[0])) for _ in range(n_clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [200] * n_clients
    assert server.stats.max_in_flight == n_clients  # all were held at once: the server is not serialising
    assert server.stats.in_flight == 0


def test_stop_releases_the_port():
    server = ChatServer(lambda body: "x").start()
    port = server.port
    server.stop()
    with pytest.raises(ConnectionError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_malformed_and_streaming_requests_get_400_without_reaching_the_handler():
    seen = []
    with ChatServer(lambda body: seen.append(body) or "x") as server:
        no_messages = _post(server, {"model": "m"})
        streaming = _post(server, {**CHAT, "stream": True})
    assert no_messages[0] == 400 and "messages" in no_messages[2]["error"]["message"]
    assert streaming[0] == 400 and "streaming" in streaming[2]["error"]["message"]
    assert seen == [] and server.stats.by_status == {400: 2}
