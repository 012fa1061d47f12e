"""A loopback vLLM-shaped server backed by a real tiny HF model: `/v1/models`, `/v1/completions` (prompt_logprobs,
echo + logprobs) and `/v1/embeddings` (mean of the last hidden states), every number computed by the model.

Switches make it misbehave as real servers do: no prompt log-probabilities, a different tokenizer, normalised or
cut embeddings, another model name.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


class ModelServer:
    """Serve the model in `model_dir` on 127.0.0.1 (an ephemeral port) until `stop()`."""

    def __init__(self, model_dir: str | Path, name: str | None = None, prompt_logprobs: bool = True,
                 tokenizer_dir: str | Path | None = None, normalize: bool = False, dims: int | None = None) -> None:
        self.name = name or str(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or model_dir)
        self.prompt_logprobs, self.normalize, self.dims = prompt_logprobs, normalize, dims
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()

    def _ids(self, prompt: Any) -> list[int]:
        return self.tokenizer(prompt)["input_ids"] if isinstance(prompt, str) else [int(token) for token in prompt]

    @torch.inference_mode()
    def completion(self, body: dict) -> dict:
        """A vLLM `text_completion` of max_tokens 1: the prompt's log-probabilities as asked, greedy next token."""
        ids = self._ids(body["prompt"])
        with self._lock:
            logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        picked = [None] + [float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))]
        ranks = [None] + [int((logprobs[t - 1] > logprobs[t - 1, ids[t]]).sum()) + 1 for t in range(1, len(ids))]
        token = int(logprobs[-1].argmax())
        decoded = [self.tokenizer.decode([i]) for i in ids]
        choice: dict[str, Any] = {"index": 0, "text": self.tokenizer.decode([token]), "logprobs": None,
                                  "finish_reason": "length", "stop_reason": None}
        if self.prompt_logprobs and body.get("prompt_logprobs") is not None:
            choice["prompt_logprobs"] = [None] + [
                {str(ids[t]): {"logprob": picked[t], "rank": ranks[t], "decoded_token": decoded[t]}}
                for t in range(1, len(ids))
            ]
        if body.get("logprobs") is not None:
            echoed = body.get("echo")
            tokens = [*(decoded if echoed else []), self.tokenizer.decode([token])]
            values = [*(picked if echoed else []), float(logprobs[-1, token])]
            choice["logprobs"] = {"tokens": tokens, "token_logprobs": values,
                                  "top_logprobs": [None if v is None else {} for v in values],
                                  "text_offset": [0] * len(values)}
        return {"id": "cmpl-loopback", "object": "text_completion", "created": int(time.time()), "model": self.name,
                "choices": [choice], "usage": {"prompt_tokens": len(ids), "completion_tokens": 1,
                                               "total_tokens": len(ids) + 1}}

    @torch.inference_mode()
    def embeddings(self, body: dict) -> dict:
        """Mean-pooled last hidden states of each input (vLLM MEAN pooler), optionally normalised or cut."""
        inputs = body["input"]
        inputs = [inputs] if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)) else inputs
        body = getattr(self.model, self.model.base_model_prefix)  # the transformer without the lm head
        data = []
        for index, prompt in enumerate(inputs):
            ids = self._ids(prompt)
            with self._lock:
                states = body(input_ids=torch.tensor([ids])).last_hidden_state[0].float()
            vector = states.mean(dim=0)
            if self.normalize:
                vector = vector / vector.norm()
            data.append({"object": "embedding", "index": index, "embedding": vector[: self.dims].tolist()})
        tokens = sum(len(self._ids(prompt)) for prompt in inputs)
        return {"object": "list", "data": data, "model": self.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            card = {"id": server.name, "object": "model", "created": 0, "owned_by": "loopback", "root": server.name}
            self._send(200, {"object": "list", "data": [card]})

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            server.bodies.append(body)
            if body.get("model") != server.name:
                self._send(404, {"error": {"message": f"model {body.get('model')!r} not served", "code": 404}})
            elif self.path.endswith("/completions"):
                self._send(200, server.completion(body))
            elif self.path.endswith("/embeddings"):
                self._send(200, server.embeddings(body))
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "code": 404}})

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
