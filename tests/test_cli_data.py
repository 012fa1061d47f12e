"""`middo ingest`, `middo export`, `middo stats` through Typer's CliRunner: exit codes, messages, files."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import read_samples

FIXTURES = Path(__file__).parent / "fixtures" / "data"
runner = CliRunner()


def _copy(tmp_path, name):
    return str(shutil.copy(FIXTURES / name, tmp_path / name))


def test_ingest_export_stats_round_trip(tmp_path):
    inputs = [_copy(tmp_path, "alpaca.json"), _copy(tmp_path, "openai.jsonl")]
    out = tmp_path / "seed.parquet"
    result = runner.invoke(app, ["ingest", *inputs, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote 5 samples to {out} (5 rows read, 0 duplicates dropped)" in result.stdout
    counts = json.loads((tmp_path / "seed.parquet.ingest.json").read_text())
    assert counts["samples"] == 5 and counts["skipped_total"] == 0
    result = runner.invoke(app, ["export", str(out), "--output", str(tmp_path / "x.jsonl"), "--format", "sharegpt"])
    assert result.exit_code == 0 and "wrote 5 sharegpt rows" in result.stdout
    result = runner.invoke(app, ["ingest", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "back.parquet")])
    assert result.exit_code == 0, result.output
    assert set(read_samples(tmp_path / "back.parquet")["id"]) == set(read_samples(out)["id"])
    result = runner.invoke(app, ["stats", str(out), "--json"])
    assert result.exit_code == 0
    stats = json.loads(result.stdout)
    assert stats["rows"] == 5 and stats["roles"]["system"] == 2
    result = runner.invoke(app, ["stats", str(out)])
    assert result.exit_code == 0 and "rows: 5" in result.stdout and "response_chars:" in result.stdout


def test_bad_row_fails_with_exit_1_and_one_message(tmp_path):
    path = _copy(tmp_path, "alpaca_bad_rows.jsonl")
    out = tmp_path / "seed.parquet"
    result = runner.invoke(app, ["ingest", path, "--output", str(out)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {path} line 2: not valid JSON")
    assert "--on-error skip" in errors[0]
    assert not out.exists() and not (tmp_path / "seed.parquet.ingest.json").exists()


def test_skip_mode_prints_and_writes_counts(tmp_path):
    path = _copy(tmp_path, "alpaca_bad_rows.jsonl")
    out = tmp_path / "seed.parquet"
    result = runner.invoke(app, ["ingest", path, "--output", str(out), "--on-error", "skip", "--source", "s"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 samples" in result.stdout and "1 duplicates dropped" in result.stdout
    for reason in ("invalid_json", "missing_instruction", "missing_response", "wrong_type"):
        assert f"skipped 1 rows: {reason} (first: {path} line " in result.stdout
    counts = json.loads((tmp_path / "seed.parquet.ingest.json").read_text())
    assert counts["skipped"] == {"invalid_json": 1, "missing_instruction": 1, "missing_response": 1, "wrong_type": 1}
    assert set(read_samples(out)["source"]) == {"s"}


def test_usage_errors(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o.parquet")])
    assert result.exit_code == 1 and "no such file or directory" in result.stderr
    result = runner.invoke(app, ["ingest", _copy(tmp_path, "alpaca.json"), "--output", "o.parquet", "--format", "x"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["export", str(tmp_path / "none.parquet"), "-o", "x.jsonl", "--format", "openai"])
    assert result.exit_code == 1 and "middo ingest" in result.stderr
    result = runner.invoke(app, ["stats", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_ingest_policy_options_and_counts(tmp_path):
    rows = [{"conversations": [{"from": "gpt", "value": "orphan"}, {"from": "human", "value": "Q"},
                               {"from": "gpt", "value": "R"}]},
            {"conversations": [{"from": "human", "value": "Q2"}, {"from": "gpt", "value": "\u200b"}]},
            {"conversations": [{"from": "human", "value": "Q3"}, {"from": "gpt", "value": "R3"}]}]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(path), "-o", str(tmp_path / "a.parquet")])
    assert result.exit_code == 0, result.output
    assert "repaired 1 rows: leading_assistant_dropped" in result.stdout
    assert "dropped 1 rows: empty_response (first: " in result.stdout
    counts = json.loads((tmp_path / "a.parquet.ingest.json").read_text())
    assert counts["samples"] == 2 and counts["dropped"] == {"empty_response": 1}
    result = runner.invoke(app, ["ingest", str(path), "-o", str(tmp_path / "b.parquet"), "--conversations", "strict",
                                 "--empty-text", "bad_row", "--on-error", "skip"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 rows: roles_out_of_order" in result.stdout and "skipped 1 rows: empty_response" in result.stdout
    result = runner.invoke(app, ["ingest", str(path), "-o", str(tmp_path / "c.parquet"), "--special-tokens", "strip"])
    assert result.exit_code != 0
