"""Export to Alpaca, ShareGPT and OpenAI chat; ingesting an export gives the same ids, messages and meta."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from middo.data.export import export_file, export_rows
from middo.data.ingest import ingest, seed_sample
from middo.data.schema import SAMPLE_SCHEMA, read_samples, write_samples
from middo.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture
def dataset(tmp_path):
    inputs = [str(shutil.copy(FIXTURES / name, tmp_path / name)) for name in ("alpaca.json", "sharegpt.json",
                                                                               "openai.jsonl")]
    ingest(inputs, tmp_path / "seed.parquet")
    return tmp_path / "seed.parquet"


def _content(frame):
    return {row["id"]: (row["messages"], json.loads(row["meta"])) for row in frame.to_dicts()}


@pytest.mark.parametrize(("fmt", "suffix"), [("alpaca", ".jsonl"), ("sharegpt", ".json"), ("openai", ".jsonl")])
def test_export_then_ingest_gives_same_ids_and_content(tmp_path, dataset, fmt, suffix):
    out = tmp_path / f"export_{fmt}{suffix}"
    count = export_file(dataset, out, fmt)
    assert count == 7
    report = ingest([str(out)], tmp_path / "back.parquet", fmt=fmt)
    assert report.samples == 7 and not report.skipped
    assert _content(read_samples(tmp_path / "back.parquet")) == _content(read_samples(dataset))


def test_export_rows_have_the_target_shape(dataset):
    samples = read_samples(dataset).to_dicts()
    multi = next(s for s in samples if len(s["messages"]) == 5)  # system + two exchanges
    alpaca = next(export_rows([multi], "alpaca"))
    assert alpaca["system"] == "You are terse."
    assert alpaca["history"] == [["Capital of France?", "Paris."]]
    assert (alpaca["instruction"], alpaca["input"], alpaca["output"]) == ("And of Italy?", "", "Rome.")
    assert alpaca["id"] == "conv_1"  # meta field back at the top level
    sharegpt = next(export_rows([multi], "sharegpt"))
    assert [turn["from"] for turn in sharegpt["conversations"]] == ["system", "human", "gpt", "human", "gpt"]
    weighted = next(s for s in samples if "_turn_fields" in s["meta"])
    openai = next(export_rows([weighted], "openai"))
    assert openai["messages"][1] == {"weight": 1, "role": "assistant", "content": "Hello!"}
    assert openai["split"] == "train"


def test_meta_that_clashes_with_format_fields_is_an_error(tmp_path):
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    frame = pl.DataFrame([seed_sample(messages, "t", {"output": "old"})], schema=SAMPLE_SCHEMA)
    write_samples(frame, tmp_path / "d.parquet")
    with pytest.raises(InputError, match=r"meta fields \['output'\] clash"):
        export_file(tmp_path / "d.parquet", tmp_path / "out.jsonl", "alpaca")
    assert not (tmp_path / "out.jsonl").exists()
    assert export_file(tmp_path / "d.parquet", tmp_path / "out.jsonl", "openai") == 1
