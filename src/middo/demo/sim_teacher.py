"""The `sim` teacher backend (a plugin: entry point `sim` of the group `middo.teachers`): the openai client talking
to the simulated teacher, served on a loopback port that this backend starts and stops.

params.yaml of the demo:

```yaml
teacher:
  backend: sim
  options: {error_rate: 0.1}     # SimOptions
```
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from middo.config import check, from_dict
from middo.demo.sim_process import SimServerProcess
from middo.demo.teacher import SIM_MODEL
from middo.teacher.client import OpenAITeacher
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatReply, ChatRequest

SIM_KEY_ENV = "MIDDO_SIM_TEACHER_KEY"
"""Read instead of `teacher.api_key_env`, so a real key in the environment is never sent, even to loopback."""


@dataclass(frozen=True)
class SimOptions:
    """`teacher.options` of the `sim` backend (the demo's SIMULATED teacher)."""

    error_rate: float = 0.1
    """Fraction of requests answered badly on purpose, chosen by a hash of the request: a wrong answer or a sloppy
    task, a reply without the final marker, or a server error that a retry gets past (one third each)."""
    seed: int = 0
    """Seed of that choice and of the simulated teacher's other random choices."""

    def __post_init__(self) -> None:
        check(0 <= self.error_rate < 1, f"teacher.options.error_rate = {self.error_rate}; use a value in [0, 1)")


class SimTeacher:
    """A `Teacher` whose endpoint is the simulated teacher on an ephemeral loopback port, served by a process started
    here (`middo.demo.sim_process`: client and server then run on two cores, not under one interpreter lock).

    The request cache is off: the port (part of the cache key) changes per run and the simulation is free.
    """

    def __init__(self, cfg: TeacherConfig, options: SimOptions) -> None:
        self._server = SimServerProcess(options.error_rate, options.seed)
        client_cfg = dataclasses.replace(cfg, backend="openai", base_url=self._server.base_url, model=SIM_MODEL,
                                         cache_path="", api_key_env=SIM_KEY_ENV, options={})
        try:
            self._client = OpenAITeacher(client_cfg)
        except BaseException:
            self._server.stop()
            raise

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """Replies in request order (see `OpenAITeacher.complete`)."""
        return self._client.complete(requests)

    def usage(self) -> dict[str, Any]:
        """The client's counters, labelled as simulated."""
        return self._client.usage() | {"simulated": True, "model": SIM_MODEL}

    @property
    def server(self) -> SimServerProcess:
        """The server process (its `stats` count the requests it received, once the teacher is closed)."""
        return self._server

    def close(self) -> None:
        """Stop the server."""
        self._client.close()
        self._server.stop()

    def __enter__(self) -> SimTeacher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_sim_teacher(cfg: TeacherConfig) -> SimTeacher:
    """The `sim` backend's factory; call `.close()` (or use `with`) to stop its server."""
    return SimTeacher(cfg, from_dict(SimOptions, cfg.options, where="teacher.options"))
