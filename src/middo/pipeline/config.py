"""The `loop` section of params.yaml: how many rounds to unroll."""

from __future__ import annotations

from dataclasses import dataclass

from middo.config import check


@dataclass(frozen=True)
class LoopConfig:
    """Section `loop`: the shape of dvc.yaml."""

    rounds: int = 2
    """Refinement rounds R; the pipeline also trains and evaluates a final model on D(R) (`train-<R+1>`)."""

    def __post_init__(self) -> None:
        check(self.rounds >= 1, f"loop.rounds = {self.rounds}; set it to 1 or more")
