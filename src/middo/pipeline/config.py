"""The `loop` section of params.yaml: how many rounds to unroll (and the demo's pretraining corpus)."""

from __future__ import annotations

from dataclasses import dataclass

from middo.config import check


@dataclass(frozen=True)
class LoopConfig:
    """Section `loop`: the shape of dvc.yaml (rounds) and the demo's pretraining corpus."""

    rounds: int = 2
    """Refinement rounds R; the pipeline also trains and evaluates a final model on D(R) (`train-<R+1>`)."""
    corpus: str = "data/demo/corpus.txt"
    """Plain-text corpus of the `pretrain` stage, which exists only when model.base is `models/base` (the demo)."""

    def __post_init__(self) -> None:
        check(self.rounds >= 1, f"loop.rounds = {self.rounds}; set it to 1 or more")
        check(bool(self.corpus), "loop.corpus is empty; set it to a text file (used when model.base is models/base)")
