"""Write samples to Parquet in batches, so memory stays bounded; the file appears only when all rows are in."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from middo.data.schema import SAMPLE_SCHEMA, empty_samples, validate_samples
from middo.outputs import check_file_target

BATCH_ROWS = 4096


class SampleWriter:
    """Collects sample dicts and streams them to `path` (zstd Parquet, `SAMPLE_SCHEMA`).

    Rows go to a hidden partial file next to `path`, which is renamed on `commit()` and removed on `abort()` (or
    when the `with` block raises), so a failed run writes nothing. Id uniqueness across batches is the caller's job.
    """

    def __init__(self, path: str | Path, batch_rows: int = BATCH_ROWS) -> None:
        self.path = check_file_target(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.batch_rows = batch_rows
        self.rows: list[dict] = []
        self.written = 0
        self._arrow_schema = empty_samples().to_arrow().schema
        self._writer: pq.ParquetWriter | None = None

    def add(self, sample: dict) -> None:
        """Queue one sample row (all `SAMPLE_SCHEMA` columns); flushes a full batch."""
        self.rows.append(sample)
        if len(self.rows) >= self.batch_rows:
            self._flush()

    def commit(self) -> Path:
        """Flush the last batch and move the finished file into place."""
        self._flush()
        if self._writer is None:
            self._open()
        self._writer.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._writer is not None:
            self._writer.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            self.abort()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.partial, self._arrow_schema, compression="zstd")

    def _flush(self) -> None:
        if not self.rows:
            return
        frame = validate_samples(pl.DataFrame(self.rows, schema=SAMPLE_SCHEMA), where=str(self.path))
        if self._writer is None:
            self._open()
        self._writer.write_table(pa.Table.from_batches(frame.to_arrow().to_batches(), self._arrow_schema))
        self.written += len(self.rows)
        self.rows = []
