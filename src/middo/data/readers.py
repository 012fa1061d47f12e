"""Format readers: raw rows from JSON, JSONL and Parquet files and from `datasets` datasets, streamed.

An input is a file (`.json`, `.jsonl`/`.ndjson`, `.parquet`), a directory written by `Dataset.save_to_disk`, a
directory of data files `datasets.load_dataset` understands, or a hub id (`owner/name`). A `:split` suffix picks a
split of a dataset with several (`owner/name:train`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from middo.data.jsonstream import RawRow, first_char, iter_json_array, iter_jsonl
from middo.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PROGRESS_MIN_BYTES = 16 << 20  # smaller inputs finish too fast for a progress bar to help
PROGRESS_MIN_ROWS = 50_000
PARQUET_BATCH_ROWS = 2048


def input_kind(spec: str) -> str:
    """`jsonl`, `json`, `parquet`, `saved` (save_to_disk dir), `datasets` (load_dataset dir or hub id)."""
    path = Path(spec)
    if not path.exists() and ":" in spec and Path(spec.rsplit(":", 1)[0]).is_dir():
        path = Path(spec.rsplit(":", 1)[0])  # DIR:SPLIT
    if path.is_dir():
        return "saved" if _is_saved_dataset(path) else "datasets"
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in JSONL_SUFFIXES:
            return "jsonl"
        if suffix in (".json", ".parquet"):
            return suffix[1:]
        raise InputError(f"{spec}: unknown file type {suffix!r}; use .json, .jsonl or .parquet (or rename the file)")
    name = spec.rsplit(":", 1)[0]
    if "/" in name and not Path(name).exists() and not name.startswith((".", "/")) and not Path(name).suffix:
        return "datasets"
    raise InputError(f"{spec}: no such file or directory; check the path (a hub dataset is given as owner/name)")


def source_name(spec: str) -> str:
    """Default `source` of an input: the file stem, the directory name, or the hub id."""
    path = Path(spec)
    if path.exists():
        return path.stem if path.is_file() else path.name
    head = spec.rsplit(":", 1)[0]
    return Path(head).name if Path(head).is_dir() else head


def read_rows(spec: str) -> Iterator[RawRow]:
    """Stream the raw rows of an input (see module docstring), with a progress bar for large ones."""
    kind = input_kind(spec)
    if kind in ("json", "jsonl"):
        yield from _file_rows(Path(spec), kind)
    elif kind == "parquet":
        yield from _parquet_rows(Path(spec))
    else:
        yield from _dataset_rows(spec, kind)


def _file_rows(path: Path, kind: str) -> Iterator[RawRow]:
    size = path.stat().st_size
    with path.open("rb") as handle, _progress(size, PROGRESS_MIN_BYTES, path.name, "B") as bar:
        if kind == "json" and first_char(handle) == "[":
            yield from iter_json_array(handle, bar.update)
        else:  # JSON Lines, or a .json file that holds one object per line
            yield from iter_jsonl(handle, bar.update)


def _parquet_rows(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"{path}: not a readable Parquet file ({exc}); re-export it or convert it to JSONL") from exc
    total = parquet.metadata.num_rows
    number = 0
    with _progress(total, PROGRESS_MIN_ROWS, path.name, "rows") as bar:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for value in batch.to_pylist():
                number += 1
                yield RawRow(f"row {number}", value=value)
            bar.update(batch.num_rows)


def _dataset_rows(spec: str, kind: str) -> Iterator[RawRow]:
    import datasets

    name, _, split = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    try:
        loaded = datasets.load_from_disk(name) if kind == "saved" else datasets.load_dataset(name, split=split or None)
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        raise InputError(
            f"{spec}: cannot load this dataset ({exc}); check the name, path and split (a hub id needs network access "
            "or a copy in the `datasets` cache)"
        ) from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split:
            if split not in loaded:
                raise InputError(f"{spec}: no split {split!r}; the dataset has splits {list(loaded)}")
            loaded = loaded[split]
        elif len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        else:
            raise InputError(f"{spec}: the dataset has splits {list(loaded)}; pick one with {name}:SPLIT")
    with _progress(len(loaded), PROGRESS_MIN_ROWS, Path(name).name, "rows") as bar:
        for number, value in enumerate(loaded, start=1):
            bar.update(1)
            yield RawRow(f"row {number}", value=value)


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()


@contextmanager
def _progress(total: int, minimum: int, name: str, unit: str) -> Iterator[tqdm]:
    """A tqdm bar (stderr, only on a terminal) when `total` reaches `minimum`, else a disabled one."""
    hidden = True if total < minimum else None  # None: tqdm shows the bar only when stderr is a terminal
    bar = tqdm(total=total, desc=f"ingest {name}", unit=unit, unit_scale=True, disable=hidden)
    try:
        yield bar
    finally:
        bar.close()
