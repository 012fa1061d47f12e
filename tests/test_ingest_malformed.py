"""Malformed text reaches ingest as one named bad row (file and row), in fail and skip mode: never an exception."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.ingest import ingest
from middo.data.schema import read_samples
from middo.errors import InputError

GOOD = json.dumps({"instruction": "Say hi.", "output": "Hi! \U0001f600"})
LONE = '{"instruction": "An emoji cut in half: \\ud83d", "output": "x"}'
DEEP = "[" * 200_000 + "]" * 200_000
MEAN = json.dumps({"instruction": "Q", "output": "A", "extra": json.loads("[" * 150 + "]" * 150)})
CASES = [  # (file name, text, skip reason, where)
    ("lone.jsonl", f"{GOOD}\n{LONE}\n", "not_unicode", "line 2"),
    ("lone.json", f"[{GOOD},\n{LONE}]", "not_unicode", "element 2 (line 2)"),
    ("deep.jsonl", f"{GOOD}\n{DEEP}\n", "too_deep", "line 2"),
    ("deep.json", f"[{GOOD},\n{DEEP}]", "too_deep", "element 2 (line 2)"),
    ("nested_meta.jsonl", f"{GOOD}\n{MEAN}\n", "too_deep", "line 2"),
]


@pytest.mark.parametrize(("name", "text", "reason", "where"), CASES, ids=[case[0] for case in CASES])
def test_fail_mode_names_the_file_and_row_and_writes_nothing(tmp_path, name, text, reason, where):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        ingest([str(path)], tmp_path / "out" / "d.parquet")
    assert str(info.value).startswith(f"{path} {where}: ") and "--on-error skip" in str(info.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("name", "text", "reason", "where"), CASES, ids=[case[0] for case in CASES])
def test_skip_mode_counts_the_row_and_keeps_the_rest(tmp_path, name, text, reason, where):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(path), "-o", str(tmp_path / "d.parquet"), "--on-error", "skip"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "d.parquet.ingest.json").read_text(encoding="utf-8"))
    assert report["skipped"] == {reason: 1} and report["examples"][reason].startswith(f"{path} {where}: ")
    frame = read_samples(tmp_path / "d.parquet")
    assert frame.height == 1 and frame["messages"][0][-1]["content"] == "Hi! \U0001f600"
