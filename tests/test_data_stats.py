"""Dataset statistics on hand-written samples, and on a raw input ingested in memory."""

import json

import polars as pl

from middo.data.ingest import seed_sample
from middo.data.schema import SAMPLE_SCHEMA, write_samples
from middo.data.stats import dataset_stats, format_stats, load_for_stats


def _sample(*turns, system=None):
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": role, "content": text} for role, text in zip(roles, turns, strict=False)]
    return seed_sample(messages, "t", {})


def test_counts_lengths_and_duplicates():
    frame = pl.DataFrame(
        [_sample("ab", "cdef"), _sample("ab", "xyz"), _sample("q1", "a1", "q two", "same", system="sys"),
         _sample("other", "same")],
        schema=SAMPLE_SCHEMA,
    )
    stats = dataset_stats(frame)
    assert stats["rows"] == 4
    assert stats["turns"]["total"] == 2 + 2 + 5 + 2
    assert stats["turns"]["per_sample"]["max"] == 5.0
    assert stats["turns"]["multi_turn_samples"] == 1
    assert stats["roles"] == {"assistant": 5, "system": 1, "user": 5}
    assert stats["lengths"]["response_chars"]["min"] == 3.0 and stats["lengths"]["response_chars"]["max"] == 4.0
    assert stats["lengths"]["prompt_chars"]["max"] == len("sys\nq1\na1\nq two")
    assert stats["lengths"]["prompt_words"]["max"] == 5.0
    assert stats["duplicates"] == {"ids": 0, "prompts": 1, "responses": 1}
    assert stats["sources"] == {"t": 4} and stats["ops"] == {"seed": 4} and stats["rounds"] == {"0": 4}
    assert "duplicates:\n  ids: 0" in format_stats(stats)
    assert dataset_stats(frame.clear()) == {"rows": 0}


def test_raw_input_is_ingested_in_memory_with_counts(tmp_path):
    lines = [{"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": "A"}, {"instruction": "Q2"}]
    (tmp_path / "raw.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    frame, counts = load_for_stats(tmp_path / "raw.jsonl")
    assert frame.height == 1
    assert counts["rows"] == 3 and counts["duplicates"] == 1 and counts["skipped"] == {"missing_response": 1}
    write_samples(frame, tmp_path / "d.parquet")
    again, none = load_for_stats(tmp_path / "d.parquet")
    assert none is None and again.to_dicts() == frame.to_dicts()
