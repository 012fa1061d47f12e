"""The `data` section of params.yaml: what the `prepare` stage ingests and how strictly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from middo.config import check
from middo.data.normalise import IngestPolicy


@dataclass(frozen=True)
class DataConfig:
    """Section `data`: the seed and eval inputs of `prepare` and how their rows are read."""

    seed: str | tuple[str, ...]
    """Seed set: one input or a list (JSON/JSONL/Parquet file, `save_to_disk` dir, or hub id `owner/name[:split]`)."""
    eval: str
    """Held-out eval set (same kinds of input), ingested into data/eval.parquet; keep it disjoint from the seed."""
    format: Literal["auto", "alpaca", "sharegpt", "openai"] = "auto"
    """Row format; `auto` detects it per input from the first row's keys."""
    source: str | None = None
    """Value of the `source` column; null uses each input's file stem (or dataset name)."""
    on_error: Literal["fail", "skip"] = "fail"
    """`fail`: the first bad row stops prepare with a message; `skip`: bad rows are dropped and counted in metrics."""
    conversations: Literal["normalise", "strict"] = "normalise"
    """`normalise`: drop leading assistant turns and merge consecutive same-role turns (blank line between), counted
    in metrics and named in `meta._repairs`; `strict`: such rows are bad rows (`on_error` decides)."""
    empty_text: Literal["drop", "bad_row"] = "drop"
    """A turn with no visible text (only whitespace or format characters such as U+200B), or no turns: `drop` drops
    the row and counts it in metrics; `bad_row` makes it a bad row (`on_error` decides)."""
    special_tokens: Literal["escape", "drop", "keep"] = "escape"
    """Literal special tokens in text (`<|endoftext|>`, `<|im_start|>`, `<s>`, ...): `escape` puts a U+200B after the
    `<` so they tokenise as plain text; `drop` drops the row; `keep` leaves them to become control tokens. Counted."""

    def __post_init__(self) -> None:
        check(bool(self.seed), "data.seed is empty; set it to the seed file (or a list of files)")
        check(all(self.seed_inputs), "data.seed holds an empty path; remove it or set it to a file")
        check(bool(self.eval), "data.eval is empty; set it to a held-out eval file")
        check(self.source is None or bool(self.source.strip()), "data.source is blank; set a name or null")

    @property
    def policy(self) -> IngestPolicy:
        """How ingestion repairs conversations and handles junk text."""
        return IngestPolicy(self.conversations, self.empty_text, self.special_tokens)

    @property
    def seed_inputs(self) -> tuple[str, ...]:
        """`seed` as a tuple of inputs."""
        return (self.seed,) if isinstance(self.seed, str) else tuple(self.seed)
