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
    gate_loss_model: Literal["base", "round"] = "base"
    """The model whose losses decide whether a simplified child is easier than its parent: `base` (M0, which saw
    neither), or `round` (Mr: trained on the parent and never on the child, it favours the parent and turned away
    about half the good simplified children; the choice before issue 19, kept to compare with earlier results)."""
    dup_threshold: float = 0.999
    """A child whose prompt embedding has cosine above this to any sample of D(r-1) or to an accepted child is a
    near-duplicate and rejected. Cosines are taken after subtracting D(r-1)'s mean embedding; mean-pooled states of
    templated prompts still sit close (demo, tiny model: nearest neighbours at a median of 0.998)."""
    on_teacher_failure: Literal["keep", "fail"] = "keep"
    """`keep`: a failed teacher call (after the teacher's retries) keeps the parent and is counted, up to
    `max_failure_rate`; `fail`: the stage exits non-zero after the phase in which any call failed."""
    max_failure_rate: float = 0.25
    """Largest fraction of a phase's teacher requests that may fail or come back unreadable (no final marker, or no
    JSON object under `reply_format: json`); above it the stage fails (nothing written, so DVC does not record a
    round that did nothing) and says how many failed and why. Below it each failure keeps its parent
    (`on_teacher_failure: keep`). 1 never fails the stage."""
    show_response: bool = True
    """Show the teacher the parent's response in simplify and improve requests (what the model got wrong helps it
    aim the rewrite); false sends the prompt only, as the reference does."""
    answer_style: Literal["concise", "comprehensive"] = "concise"
    """How the teacher is asked to answer a new prompt: `concise` (correct, complete and no longer than it needs
    to be: long answers cost training tokens and are cut at `model.max_length`) or `comprehensive`
    (comprehensive and accurate, the reference's wording; template entry `respond_comprehensive`)."""
    hard_and_low_quality: Literal["simplify", "both"] = "simplify"
    """A sample flagged both `hard` and `low_quality`: `simplify` gives it one child (a simpler prompt answers
    both flags: it is rewritten and answered afresh); `both` asks for a simplified and an improved child, each
    replacing the parent when accepted (the reference's two children)."""
    synth_per_sample: int = 1
    """New samples requested per sparse sample (each request is a distinct variant, so none is a cache copy)."""
    max_hints: int = 5
    """Neighbours of a sparse sample (from knn.parquet, nearest first) shown to the teacher as hints."""
    hint_chars: int = 600
    """Characters of each hint's prompt kept (longer ones are cut, marked with `...`); 0 keeps hints whole."""
    context_max_tokens: int = 1024
    """Tokens of a multi-turn sample's earlier turns shown to the teacher as context: the newest whole turns that fit,
    oldest dropped first; 0 shows none (the teacher is told how many were left out). Counted by the tokenizer-free
    estimate of the teacher's limits (characters / 4 + 4 per turn). Only what the teacher sees is cut: a simplify or
    improve child keeps all of its parent's earlier turns. refine.json counts the samples cut and turns dropped."""
    prompt_max_tokens: int = 512
    """Max tokens of a teacher reply that writes a new prompt (refine's own limit; `teacher.max_tokens` is not
    used by refine, whose two phases need different lengths; the sampling temperature is `teacher.temperature`)."""
    response_max_tokens: int = 1024
    """Max tokens of a teacher reply that writes a response."""
    token_budget: int = 4096
    """Padded tokens per batch of the gate's forward passes (child embeddings under Mr, the losses of simplified
    children and their parents under M0)."""
    reply_format: Literal["auto", "json", "markers"] = "auto"
    """How the teacher is asked to reply. `json`: a new prompt comes as a JSON object `{"text": ...}` (sent as a
    `response_format` JSON schema, which OpenAI-compatible servers enforce; the `local` backend prefills the object's
    opening), and a response is the whole assistant message. `markers`: both between `<final>` and `</final>`.
    `auto`: `json` for the `openai` and `local` backends, `markers` for the others (the demo's `sim`). A reply that
    does not follow `json` is still read when it carries a final marker. SmolLM2-135M-Instruct as local teacher:
    see docs/design.md for the parse rates of both."""
    prompts: str | None = None
    """Template file of the teacher's instructions (a copy of middo/templates/refine.yaml, edited); null uses the
    packaged one. The request markers are fixed (`middo.refine.contract`)."""

    def __post_init__(self) -> None:
        check(0 < self.dup_threshold <= 1, f"refine.dup_threshold = {self.dup_threshold}; use a cosine in (0, 1]")
        check(0 <= self.max_failure_rate <= 1, f"refine.max_failure_rate = {self.max_failure_rate}; use a fraction "
              "in [0, 1]")
        check(self.synth_per_sample >= 0, f"refine.synth_per_sample = {self.synth_per_sample}; use 0 or more")
        check(self.max_hints >= 0, f"refine.max_hints = {self.max_hints}; use 0 or more")
        check(self.hint_chars == 0 or self.hint_chars >= 20, f"refine.hint_chars = {self.hint_chars}; use at least 20 "
              "(or 0 to keep hints whole)")
        check(self.context_max_tokens >= 0, f"refine.context_max_tokens = {self.context_max_tokens}; use 0 or more "
              "(0 shows the teacher no earlier turn)")
        for name in ("prompt_max_tokens", "response_max_tokens"):
            check(getattr(self, name) >= 1, f"refine.{name} = {getattr(self, name)}; use 1 or more")
        check(self.token_budget >= 16, f"refine.token_budget = {self.token_budget}; use at least 16 tokens")
