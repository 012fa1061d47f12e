"""Params section `refine`: teacher operations, the gate, and what a teacher failure does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from middo.config import check


@dataclass(frozen=True)
class RefineConfig:
    """Section `refine`: how flagged samples are rewritten and how each child is checked."""

    gate: bool = True
    """Check every child (not empty, not a copy, not a near-duplicate, better on its signal); false is the control
    arm that accepts every parsed child (an id already in the dataset is still refused: ids stay unique)."""
    dup_threshold: float = 0.999
    """A child whose prompt embedding has cosine above this to any sample of D(r-1) or to an accepted child is a
    near-duplicate and rejected. Cosines are taken after subtracting D(r-1)'s mean embedding; mean-pooled states of
    templated prompts still sit close (demo, tiny model: nearest neighbours at a median of 0.998)."""
    on_teacher_failure: Literal["keep", "fail"] = "keep"
    """`keep`: a failed teacher call (after the teacher's retries) keeps the parent and is counted; `fail`: the stage
    exits non-zero after the phase in which calls failed. A reply without the final marker is counted, never fatal."""
    synth_per_sample: int = 1
    """New samples requested per sparse sample (each request is a distinct variant, so none is a cache copy)."""
    max_hints: int = 5
    """Neighbours of a sparse sample (from knn.parquet, nearest first) shown to the teacher as hints."""
    hint_chars: int = 600
    """Characters of each hint's prompt kept (longer ones are cut, marked with `...`)."""
    prompt_max_tokens: int = 512
    """Max tokens of a teacher reply that writes a new prompt (refine's own limit; `teacher.max_tokens` is not
    used by refine, whose two phases need different lengths; the sampling temperature is `teacher.temperature`)."""
    response_max_tokens: int = 1024
    """Max tokens of a teacher reply that writes a response."""
    token_budget: int = 4096
    """Padded tokens per batch of the gate's forward pass under Mr (child losses and embeddings)."""
    prompts: str | None = None
    """Template file of the teacher's instructions (a copy of middo/templates/refine.yaml, edited); null uses the
    packaged one. The request markers are fixed (`middo.refine.contract`)."""

    def __post_init__(self) -> None:
        check(0 < self.dup_threshold <= 1, f"refine.dup_threshold = {self.dup_threshold}; use a cosine in (0, 1]")
        check(self.synth_per_sample >= 0, f"refine.synth_per_sample = {self.synth_per_sample}; use 0 or more")
        check(self.max_hints >= 0, f"refine.max_hints = {self.max_hints}; use 0 or more")
        check(self.hint_chars >= 20, f"refine.hint_chars = {self.hint_chars}; use at least 20")
        for name in ("prompt_max_tokens", "response_max_tokens"):
            check(getattr(self, name) >= 1, f"refine.{name} = {getattr(self, name)}; use 1 or more")
        check(self.token_budget >= 16, f"refine.token_budget = {self.token_budget}; use at least 16 tokens")
