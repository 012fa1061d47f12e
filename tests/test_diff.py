"""middo diff: kept / replaced / added / removed by id and lineage, on hand-built datasets."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import sample_id, write_samples
from middo.errors import InputError
from middo.report.diff import diff_datasets, resolve_dataset


def _sample(prompt: str, response: str, round_: int = 0, parent: str | None = None, op: str = "seed") -> dict:
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return {"id": sample_id(messages), "messages": messages, "source": "test", "round": round_, "parent": parent,
            "op": op, "meta": json.dumps({})}


def _frame(rows: list[dict]) -> pl.DataFrame:
    from middo.data.schema import SAMPLE_SCHEMA

    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA)


@pytest.fixture
def rounds():
    a, b, c, d = (_sample(f"question {i}", f"answer {i}") for i in range(4))
    simpler = _sample("easy question 0", "easy answer", 1, a["id"], "simplify")
    better = _sample("clear question 1", "full answer", 1, b["id"], "improve")
    new = _sample("new question", "new answer", 1, c["id"], "synthesize")
    orphan = _sample("from elsewhere", "x", 1, "ffffffffffffffff", "synthesize")
    before = _frame([a, b, c, d])
    after = _frame([simpler, better, c, new, orphan])  # d is lost
    return before, after, (a, b, c, d, simpler, better, new, orphan)


def test_categories_follow_ids_and_parents(rounds):
    before, after, (a, b, c, d, simpler, better, new, orphan) = rounds
    result = diff_datasets(before, after)
    assert result.kept == [c["id"]]
    assert {(x.parent, x.id, x.op) for x in result.replaced} == {
        (a["id"], simpler["id"], "simplify"), (b["id"], better["id"], "improve")}
    assert {(x.parent, x.id, x.op) for x in result.added} == {
        (c["id"], new["id"], "synthesize"), ("ffffffffffffffff", orphan["id"], "synthesize")}
    assert result.removed == [d["id"]]
    assert result.counts() == {"kept": 1, "replaced": 2, "added": 2, "removed": 1}


def test_lineage_through_a_middle_round_counts_a_twice_replaced_sample_once(tmp_path, rounds):
    before, after, (a, b, c, d, simpler, better, new, orphan) = rounds
    again = _sample("easier question 0", "easy answer", 2, simpler["id"], "improve")
    from_child = _sample("another new question", "x", 2, simpler["id"], "synthesize")
    final = _frame([again, from_child, better, c, new, orphan])
    result = diff_datasets(before, final, {simpler["id"]: a["id"], better["id"]: b["id"], new["id"]: c["id"]})
    assert {(x.parent, x.id, x.op) for x in result.replaced} == {
        (a["id"], again["id"], "improve"), (b["id"], better["id"], "improve")}
    assert (a["id"], from_child["id"], "synthesize") in {(x.parent, x.id, x.op) for x in result.added}
    assert result.removed == [d["id"]]  # a is accounted for through round 1; only d is lost
    without = diff_datasets(before, final)
    assert a["id"] in without.removed and again["id"] in {x.id for x in without.added}
    for r, frame in enumerate((before, after, final)):
        write_samples(frame, tmp_path / f"data/r{r}/dataset.parquet")
    output = CliRunner().invoke(app, ["diff", "0", "2", "--project", str(tmp_path)]).output
    assert f"replaced {a['id']} -> {again['id']} (improve)" in output and "removed: 1" in output


def test_identical_datasets_keep_everything(rounds):
    before, _, _ = rounds
    result = diff_datasets(before, before)
    assert result.counts() == {"kept": 4, "replaced": 0, "added": 0, "removed": 0}
    assert result.kept == sorted(before["id"].to_list())


def test_round_numbers_resolve_to_dataset_files(tmp_path, rounds):
    before, _, _ = rounds
    write_samples(before, tmp_path / "data/r1/dataset.parquet")
    assert resolve_dataset("1", tmp_path) == tmp_path / "data/r1/dataset.parquet"
    with pytest.raises(InputError, match="dvc repro"):
        resolve_dataset("2", tmp_path)
    with pytest.raises(InputError, match="Parquet"):
        resolve_dataset(str(tmp_path / "nope.parquet"), tmp_path)


def cli_app():
    """The `middo` Typer app, for the test modules that import it from here."""
    return app


def test_cli_prints_counts_lists_and_examples(tmp_path, rounds):
    before, after, (a, _, _, d, simpler, *_) = rounds
    write_samples(before, tmp_path / "data/r0/dataset.parquet")
    write_samples(after, tmp_path / "data/r1/dataset.parquet")
    result = CliRunner().invoke(app, ["diff", "0", "1", "--show", "1", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "kept: 1  replaced: 2  added: 2  removed: 1" in result.output
    assert f"removed  {d['id']}" in result.output
    assert f"replaced {a['id']} -> {simpler['id']} (simplify)" in result.output
    assert "before prompt:" in result.output and "easy question 0" in result.output
    assert all(f"{op}: " in result.output for op in ("simplify", "improve", "synthesize"))  # one example per op
    missing = CliRunner().invoke(app, ["diff", "0", "7", "--project", str(tmp_path)])
    assert missing.exit_code == 1 and "no such dataset" in missing.output
