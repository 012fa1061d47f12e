"""Ingest: raw rows of any supported input -> seed samples (`round` 0, `op` "seed") in one Parquet dataset.

With `on_error="fail"` the first bad row raises one `InputError` naming the input, the row and the fix, and nothing is
written. With `on_error="skip"` bad rows are dropped and counted by reason. Exact duplicates (same messages, hence the
same id) are kept once and counted in both modes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from middo.data.formats import FORMATS, detect_format, row_to_messages
from middo.data.jsonstream import BadRow, RawRow
from middo.data.readers import read_rows, source_name
from middo.data.schema import meta_json, sample_id
from middo.data.writer import SampleWriter
from middo.errors import ConfigError, InputError

ON_ERROR = ("fail", "skip")
_FORMAT_NAMES = "instruction/output (Alpaca), conversations (ShareGPT) or messages (OpenAI chat)"


@dataclass
class IngestReport:
    """What an ingest run read, kept, and dropped (by reason); written as JSON next to the output."""

    inputs: list[str]
    on_error: str
    rows: int = 0
    samples: int = 0
    duplicates: int = 0
    skipped: Counter = field(default_factory=Counter)
    formats: dict[str, str] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON: counts, the format found per input, and the first message per skip reason."""
        return {
            "inputs": self.inputs, "on_error": self.on_error, "rows": self.rows, "samples": self.samples,
            "duplicates": self.duplicates, "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": sum(self.skipped.values()), "formats": self.formats, "examples": self.examples,
        }


def seed_sample(messages: list[dict], source: str, meta: dict) -> dict:
    """A sample row of the seed round: id from the messages, the leftover fields as a JSON `meta` string."""
    return {
        "id": sample_id(messages), "messages": messages, "source": source, "round": 0, "parent": None,
        "op": "seed", "meta": meta_json(meta),
    }


def ingest(
    inputs: Iterable[str], output: str | Path, fmt: str = "auto", source: str | None = None, on_error: str = "fail"
) -> IngestReport:
    """Read every input into one deduplicated seed dataset at `output` (Parquet); see the module docstring."""
    inputs = [str(spec) for spec in inputs]
    _check_options(inputs, fmt, on_error)
    report = IngestReport(inputs=inputs, on_error=on_error)
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
            raise InputError(f"{', '.join(inputs)}: no usable samples ({_skip_summary(report)}); check the inputs")
        writer.commit()
    return report


def iter_samples(spec: str, fmt: str, source: str, on_error: str, report: IngestReport) -> Iterator[dict]:
    """Seed samples of one input, before deduplication; bad rows raise or are counted per `on_error`."""
    file_format = None if fmt == "auto" else fmt
    rows_before = report.rows
    for raw in read_rows(spec):
        report.rows += 1
        try:
            file_format = file_format or _detect(raw)
            yield _to_sample(raw, file_format, source)
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


def _to_sample(raw: RawRow, fmt: str, source: str) -> dict:
    if raw.error is not None:
        raise raw.error
    messages, meta = row_to_messages(raw.value, fmt)
    return seed_sample(messages, source, meta)


def _bad_row(spec: str, location: str, bad: BadRow, on_error: str, report: IngestReport) -> None:
    where = f"{spec} {location}".strip()
    message = f"{where}: {bad}"
    if on_error == "fail":
        hint = "" if "--on-error" in str(bad) else " (or pass --on-error skip to skip bad rows and count them)"
        raise InputError(message + hint) from None
    report.skipped[bad.reason] += 1
    report.examples.setdefault(bad.reason, message)


def _skip_summary(report: IngestReport) -> str:
    if not report.skipped:
        return f"{report.rows} rows read"
    return f"{report.rows} rows read, skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped.items()))


def _check_options(inputs: list[str], fmt: str, on_error: str) -> None:
    if not inputs:
        raise ConfigError("no inputs given; pass one or more files, dataset directories or hub ids")
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r} is unknown; choose auto, {', '.join(FORMATS)}")
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error {on_error!r} is unknown; choose fail or skip")
