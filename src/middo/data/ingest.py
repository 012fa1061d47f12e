"""Ingest: raw rows of any supported input -> seed samples (`round` 0, `op` "seed") in one Parquet dataset.

With `on_error="fail"` the first bad row raises one `InputError` naming the input, the row and the fix, and nothing is
written. With `on_error="skip"` bad rows are dropped and counted by reason. Before the checks, each row goes through
the `IngestPolicy` (`middo.data.normalise`): conversation repairs are counted under `repaired`, rows the policy drops
(empty text, special tokens) under `dropped`, in both modes. Exact duplicates (same messages, hence the same id) are
kept once and counted in both modes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from middo.data.formats import FORMATS, check_messages, detect_format, row_to_turns
from middo.data.jsonstream import BadRow, RawRow
from middo.data.normalise import Dropped, IngestPolicy, apply_policy
from middo.data.readers import read_rows, source_name
from middo.data.schema import meta_json, sample_id
from middo.data.writer import SampleWriter
from middo.errors import ConfigError, InputError
from middo.log import get_logger

log = get_logger(__name__)

ON_ERROR = ("fail", "skip")
_FORMAT_NAMES = "instruction/output (Alpaca), conversations (ShareGPT) or messages (OpenAI chat)"


@dataclass
class IngestReport:
    """What an ingest run read, kept, and dropped (by reason); written as JSON next to the output."""

    inputs: list[str]
    on_error: str
    policy: IngestPolicy = IngestPolicy()
    rows: int = 0
    samples: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    """Bad rows skipped (`on_error: skip`), by reason."""
    dropped: Counter = field(default_factory=Counter)
    """Rows the policy dropped (empty text, special tokens), by reason."""
    repaired: Counter = field(default_factory=Counter)
    """Rows kept after a repair, by repair (a row can have several)."""
    special_token_rows: int = 0
    """Rows holding literal special-token text, whatever the policy did with them."""
    formats: dict[str, str] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON: counts, the format found per input, and the first message per skip/drop reason."""
        return {
            "inputs": self.inputs, "on_error": self.on_error, "policy": dataclasses.asdict(self.policy),
            "rows": self.rows, "samples": self.samples, "duplicates": self.duplicates,
            "skipped": dict(sorted(self.skipped.items())), "skipped_total": sum(self.skipped.values()),
            "dropped": dict(sorted(self.dropped.items())), "dropped_total": sum(self.dropped.values()),
            "repaired": dict(sorted(self.repaired.items())), "special_token_rows": self.special_token_rows,
            "formats": self.formats, "examples": self.examples,
        }

    def summary(self) -> str:
        """One line for the log: rows read and kept, then every count by reason."""
        parts = [f"{self.rows} rows read, {self.samples} samples kept, {self.duplicates} duplicates"]
        for name in ("repaired", "dropped", "skipped"):
            counts = getattr(self, name)
            if counts:
                parts.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        return "; ".join(parts)


def seed_sample(messages: list[dict], source: str, meta: dict) -> dict:
    """A sample row of the seed round: id from the messages, the leftover fields as a JSON `meta` string."""
    return {
        "id": sample_id(messages), "messages": messages, "source": source, "round": 0, "parent": None,
        "op": "seed", "meta": meta_json(meta),
    }


def ingest(
    inputs: Iterable[str], output: str | Path, fmt: str = "auto", source: str | None = None, on_error: str = "fail",
    policy: IngestPolicy = IngestPolicy(),
) -> IngestReport:
    """Read every input into one deduplicated seed dataset at `output` (Parquet); see the module docstring."""
    inputs = [str(spec) for spec in inputs]
    _check_options(inputs, fmt, on_error)
    report = IngestReport(inputs=inputs, on_error=on_error, policy=policy)
    seen: set[str] = set()
    with SampleWriter(output) as writer:
        for spec in inputs:
            for sample in iter_samples(spec, fmt, source or source_name(spec), on_error, report):
                if sample["id"] in seen:
                    report.duplicates += 1
                    continue
                seen.add(sample["id"])
                writer.add(sample)
        report.samples = len(seen)
        if not report.samples:
            raise InputError(f"{', '.join(inputs)}: no usable samples ({report.summary()}); check the inputs")
        writer.commit()
    log.info("ingest %s: %s", ", ".join(inputs), report.summary())
    return report


def iter_samples(spec: str, fmt: str, source: str, on_error: str, report: IngestReport) -> Iterator[dict]:
    """Seed samples of one input, before deduplication; bad rows raise or are counted per `on_error`, rows the policy
    drops are counted."""
    file_format = None if fmt == "auto" else fmt
    rows_before = report.rows
    for raw in read_rows(spec):
        report.rows += 1
        try:
            file_format = file_format or _detect(raw)
            yield _to_sample(raw, file_format, source, report)
        except Dropped as drop:
            report.dropped[drop.reason] += 1
            report.examples.setdefault(drop.reason, f"{spec} {raw.location}: {drop}".strip())
        except BadRow as bad:
            _bad_row(spec, raw.location, bad, on_error, report)
    if report.rows == rows_before:
        bad = BadRow("empty_file", "the input has no rows; check the path, or remove it from the inputs")
        _bad_row(spec, "", bad, on_error, report)
    report.formats[spec] = file_format or "unknown"


def report_path(output: str | Path) -> Path:
    """Where the CLI writes an ingest report: `<output>.ingest.json`."""
    return Path(f"{output}.ingest.json")


def _detect(raw: RawRow) -> str:
    if raw.error is not None:
        raise raw.error
    found = detect_format(raw.value)
    if found is None:
        keys = sorted(raw.value) if isinstance(raw.value, dict) else type(raw.value).__name__
        raise BadRow("unknown_format", f"cannot tell the format from {keys}; rows need {_FORMAT_NAMES} (or --format)")
    return found


def _to_sample(raw: RawRow, fmt: str, source: str, report: IngestReport) -> dict:
    if raw.error is not None:
        raise raw.error
    messages, meta = row_to_turns(raw.value, fmt)
    row = apply_policy(messages, meta, report.policy)
    check_messages(row.messages)
    report.repaired.update(row.repairs)
    report.special_token_rows += row.special_tokens
    return seed_sample(row.messages, source, row.meta)


def _bad_row(spec: str, location: str, bad: BadRow, on_error: str, report: IngestReport) -> None:
    where = f"{spec} {location}".strip()
    message = f"{where}: {bad}"
    if on_error == "fail":
        hint = "" if "--on-error" in str(bad) else " (or pass --on-error skip to skip bad rows and count them)"
        raise InputError(message + hint) from None
    report.skipped[bad.reason] += 1
    report.examples.setdefault(bad.reason, message)


def _check_options(inputs: list[str], fmt: str, on_error: str) -> None:
    if not inputs:
        raise ConfigError("no inputs given; pass one or more files, dataset directories or hub ids")
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is unknown; choose auto, {', '.join(FORMATS)}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error {on_error!r} is unknown; choose fail or skip")
