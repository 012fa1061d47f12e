"""Export a middo dataset to Alpaca, ShareGPT or OpenAI chat JSONL, to train elsewhere (e.g. LLaMA-Factory).

Each row carries the sample's `meta` fields back at the top level (per-turn fields back on their turns), so
`middo ingest` of an export gives the same ids, messages and meta. Multi-turn samples export to Alpaca with
`history` ([prompt, response] pairs) and `system`, as LLaMA-Factory reads them; an Alpaca prompt comes back as
`instruction` with an empty `input`. A `.json` output is written as one
JSON array instead of lines. middo's own notes (refine's attempt history, ingestion's repairs) stay out of the
training file unless asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from middo.data.formats import FORMATS, TURN_FIELDS
from middo.data.normalise import REPAIRS
from middo.data.schema import read_samples, sample_meta
from middo.errors import ConfigError, InputError
from middo.outputs import check_file_target

EXPORT_SLICE_ROWS = 10_000  # rows turned into Python dicts at a time
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
NOTES = ("refine", REPAIRS)
"""Keys of `meta` that middo writes for itself (refine's attempt history, ingestion's repairs): not training data."""


def export_rows(samples: list[dict], fmt: str, notes: bool = False) -> Iterator[dict]:
    """Rows of format `fmt` for sample dicts (as read by `read_samples(...).to_dicts()`); middo's own notes in
    `meta` (`NOTES`) are left out unless `notes`."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    for sample in samples:
        meta = sample_meta(sample["meta"], sample["id"])
        for key in () if notes else NOTES:
            meta.pop(key, None)
        # Alpaca has no turn objects: there per-turn fields stay one top-level field
        body = _alpaca(sample) if fmt == "alpaca" else _turns(sample["messages"], meta.pop(TURN_FIELDS, {}), fmt)
        clashes = sorted(set(meta) & set(body))
        if clashes:
            raise InputError(
                f"sample {sample['id']}: meta fields {clashes} clash with {fmt} fields; rename them in meta "
                f"or export to another format"
            )
        yield {**meta, **body}


def export_file(input_path: str | Path, output: str | Path, fmt: str, notes: bool = False) -> int:
    """Write the dataset at `input_path` (Parquet) to `output` in format `fmt` (with middo's notes when `notes`);
    returns the row count."""
    output = check_file_target(output)
    frame = read_samples(input_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    rows = (row for part in frame.iter_slices(EXPORT_SLICE_ROWS) for row in export_rows(part.to_dicts(), fmt, notes))
    try:
        count = _write(rows, partial, as_array=output.suffix.lower() == ".json")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, output)
    return count


def _write(rows: Iterator[dict], path: Path, as_array: bool) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            text = json.dumps(row, ensure_ascii=False)
            if as_array:
                text = ("[\n" if count == 0 else ",\n") + text
            handle.write(text if as_array else text + "\n")
            count += 1
        if as_array:
            handle.write("\n]\n" if count else "[]\n")
    return count


def _alpaca(sample: dict) -> dict:
    messages = sample["messages"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    body = messages[1:] if system is not None else messages
    if len(body) % 2 or any(m["role"] != ("user", "assistant")[i % 2] for i, m in enumerate(body)):
        raise InputError(f"sample {sample['id']}: turns are not user/assistant pairs, so Alpaca cannot hold them; "
                         "export to sharegpt or openai instead")
    pairs = [[body[i]["content"], body[i + 1]["content"]] for i in range(0, len(body), 2)]
    row = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system is not None:
        row["system"] = system
    if len(pairs) > 1:
        row["history"] = pairs[:-1]
    return row


def _turns(messages: list[dict], turn_fields: dict, fmt: str) -> dict:
    turns = []
    for index, message in enumerate(messages):
        extra = turn_fields.get(str(index), {})
        if fmt == "sharegpt":
            turns.append({**extra, "from": SHAREGPT_ROLES[message["role"]], "value": message["content"]})
        else:
            turns.append({**extra, "role": message["role"], "content": message["content"]})
    return {"conversations": turns} if fmt == "sharegpt" else {"messages": turns}
