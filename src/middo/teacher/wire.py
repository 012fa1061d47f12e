"""The OpenAI chat-completions wire format as the loopback server writes it: scripted `Reply`, bodies, errors."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What the server sends back for one request."""

    content: str = ""
    """The assistant message (status 200) or the error message (other statuses)."""
    status: int = 200
    """HTTP status code."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. {"Retry-After": "1"}."""
    delay_s: float = 0.0
    """Seconds to wait before answering (latency, or a client timeout when longer than it)."""
    drop: bool = False
    """Close the connection without answering (after `delay_s`)."""
    top_logprobs: list[dict[str, float]] | None = None
    """Per generated position, candidate token -> logprob; sent only when the request asks for logprobs."""
    prompt_tokens: int | None = None
    """Usage override; default counts whitespace-separated words of the request messages."""
    completion_tokens: int | None = None
    """Usage override; default counts whitespace-separated words of `content`."""
    finish_reason: str = "stop"


def check_request(body: dict[str, Any]) -> Reply | None:
    """A 400 reply for a request this server cannot answer, as a real endpoint would send; else None."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(message, dict) for message in messages):
        return Reply("`messages` must be a list of {role, content} objects", status=400)
    if body.get("stream"):
        return Reply("streaming is not supported by the loopback server", status=400)
    return check_response_format(body.get("response_format"))


def check_response_format(value: Any) -> Reply | None:
    """A 400 reply for a `response_format` OpenAI would refuse (a json_schema without a name or a schema object)."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return None
    schema = value.get("json_schema") if kind == "json_schema" else None
    if not isinstance(schema, dict) or not schema.get("name") or not isinstance(schema.get("schema"), dict):
        return Reply("`response_format` must be {type: text | json_object | json_schema}; json_schema needs "
                     "`json_schema.name` and a `json_schema.schema` object", status=400)
    return None


def completion_body(request: dict[str, Any], reply: Reply, model: str) -> dict[str, Any]:
    """An OpenAI `chat.completion` object for `reply`."""
    prompt_words = sum(len(str(message.get("content") or "").split()) for message in request.get("messages", []))
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_words
    completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else len(reply.content.split())
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": reply.content},
        "finish_reason": reply.finish_reason,
        "logprobs": None,
    }
    if request.get("logprobs") and reply.top_logprobs is not None:
        choice["logprobs"] = {"content": _logprob_content(reply.top_logprobs, int(request.get("top_logprobs") or 0))}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _logprob_content(positions: list[dict[str, float]], top_k: int) -> list[dict[str, Any]]:
    content = []
    for candidates in positions:
        ranked = sorted(candidates.items(), key=lambda item: item[1], reverse=True)
        chosen_token, chosen_logprob = ranked[0] if ranked else ("", 0.0)
        content.append({
            "token": chosen_token,
            "logprob": chosen_logprob,
            "bytes": list(chosen_token.encode("utf-8")),
            "top_logprobs": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}
                for token, logprob in ranked[:top_k]
            ],
        })
    return content


def error_body(message: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": "loopback_error", "param": None, "code": status}}
