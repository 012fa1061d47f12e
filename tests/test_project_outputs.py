"""What a user takes out of a project: clean training files, commands that work for any number of rounds, a diff
that summarises first and lists a bounded number of ids, and token lengths before training."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import SAMPLE_SCHEMA, sample_id, write_samples
from middo.report.diff_output import LIMIT


def _sample(i: int, round_: int = 0, parent: str | None = None, op: str = "seed", meta: dict | None = None) -> dict:
    messages = [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    return {"id": sample_id(messages), "messages": messages, "source": "t", "round": round_, "parent": parent,
            "op": op, "meta": json.dumps(meta or {})}


@pytest.fixture
def project(tmp_path):
    """A one-round project: params.yaml says `loop.rounds: 1`; round 1 replaced 30 of 40 seed samples."""
    seed = [_sample(i, meta={"tag": i, "_repairs": ["merged_turns"]}) for i in range(40)]
    notes = {"tag": 0, "refine": [{"round": 1, "op": "improve", "outcome": "rejected", "reason": "signal"}]}
    children = [_sample(100 + i, 1, seed[i]["id"], "improve") for i in range(30)]
    kept = [{**seed[i], "meta": json.dumps(notes)} for i in range(30, 40)]
    for r, rows in ((0, seed), (1, children + kept)):
        (tmp_path / f"data/r{r}").mkdir(parents=True)
        write_samples(pl.DataFrame(rows, schema=SAMPLE_SCHEMA), tmp_path / f"data/r{r}/dataset.parquet")
    (tmp_path / "params.yaml").write_text("loop:\n  rounds: 1\n", encoding="utf-8")
    return tmp_path


def test_export_defaults_to_the_last_round_and_leaves_middo_notes_out(project):
    out = project / "refined.jsonl"
    result = CliRunner().invoke(app, ["export", "--project", str(project), "-o", str(out), "--format", "openai"])
    assert result.exit_code == 0, result.output
    assert "data/r1/dataset.parquet" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40 and all(set(row) <= {"messages", "tag"} for row in rows)
    assert any("tag" in row for row in rows)  # the user's own fields stay
    with_notes = project / "notes.jsonl"
    args = ["export", "1", "--project", str(project), "-o", str(with_notes), "--format", "openai", "--notes"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert sum("refine" in json.loads(line) for line in with_notes.read_text().splitlines()) == 10


def test_diff_summarises_first_and_bounds_the_id_lists(project):
    result = CliRunner().invoke(app, ["diff", "0", "last", "--project", str(project)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("kept: 10  replaced: 30") and lines[2].startswith("  replaced by op: improve 30")
    replaced = [line for line in lines if line.startswith("replaced ")]
    assert len(replaced) == LIMIT and "... and 10 more (--limit 0 lists all)" in result.output
    everything = CliRunner().invoke(app, ["diff", "0", "1", "--project", str(project), "--limit", "0"])
    assert sum(line.startswith("replaced ") for line in everything.output.splitlines()) == 30


def test_flags_changed_is_part_of_the_summary():
    from middo.report.compare import Comparison, FlagChange
    from middo.report.diff import diff_datasets
    from middo.report.diff_output import diff_lines

    frame = pl.DataFrame([_sample(i) for i in range(3)], schema=SAMPLE_SCHEMA)
    changes = [FlagChange(f"{i:016x}", ("hard",), ()) for i in range(30)]
    lines = diff_lines(Comparison(frame, frame, diff_datasets(frame, frame), changes), ("a", "b"), 5, 0)
    assert lines[2] == "flags changed: 30" and lines[3].startswith("flags    ")


def test_length_report_counts_what_max_length_cuts():
    from middo.model.lengths import describe, length_report

    report = length_report(np.array([10, 20, 30, 40, 500]), 32)
    assert report["truncated"] == 2 and report["max"] == 500 and report["median"] == 30
    assert "2 of 5 (40.0%) exceed model.max_length = 32" in describe(report)


def test_stats_reports_token_lengths_with_the_project_model(tmp_path, tiny_model_dir):
    rows = [{"messages": [{"role": "user", "content": "the cat sees a dog " * n},
                          {"role": "assistant", "content": "ok"}]} for n in (1, 2, 40)]
    data = tmp_path / "seed.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(f"model:\n  base: {tiny_model_dir}\n  max_length: 64\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["stats", str(data), "--params", str(params), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["tokens"]["samples"] == 3 and stats["tokens"]["truncated"] == 1
    assert stats["tokens"]["max_length"] == 64 and stats["ingest"]["rows"] == 3
    text = CliRunner().invoke(app, ["stats", str(data), "--model", str(tiny_model_dir), "--max-length", "16"])
    assert "exceed model.max_length = 16" in text.output
