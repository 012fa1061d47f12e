"""`make_sim_teacher(cfg)`: the `sim` teacher backend, the openai client talking to the simulated loopback server."""

from __future__ import annotations

import dataclasses
from typing import Any

from middo.demo.teacher import SIM_MODEL, start_sim_server
from middo.teacher.client import OpenAITeacher
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatReply, ChatRequest

SIM_KEY_ENV = "MIDDO_SIM_TEACHER_KEY"
"""Read instead of `teacher.api_key_env`, so a real key in the environment is never sent, even to loopback."""


class SimTeacher:
    """A `Teacher` whose endpoint is the simulated teacher on an ephemeral loopback port, started here.

    The request cache is off: the port (part of the cache key) changes per run and the simulation is free.
    """

    def __init__(self, cfg: TeacherConfig, seed: int = 0) -> None:
        self._server = start_sim_server(cfg.sim_error_rate, seed)
        client_cfg = dataclasses.replace(
            cfg, base_url=self._server.base_url, model=SIM_MODEL, cache_path="", api_key_env=SIM_KEY_ENV
        )
        self._client = OpenAITeacher(client_cfg)

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """Replies in request order (see `OpenAITeacher.complete`)."""
        return self._client.complete(requests)

    def usage(self) -> dict[str, Any]:
        """The client's counters, labelled as simulated."""
        return self._client.usage() | {"simulated": True, "model": SIM_MODEL}

    def close(self) -> None:
        """Stop the server."""
        self._client.close()
        self._server.stop()

    def __enter__(self) -> SimTeacher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_sim_teacher(cfg: TeacherConfig, seed: int = 0) -> SimTeacher:
    """The `sim` backend of `middo.teacher.make_teacher`; call `.close()` (or use `with`) to stop its server."""
    return SimTeacher(cfg, seed)
