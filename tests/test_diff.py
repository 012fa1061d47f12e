"""middo diff: kept / replaced / added / removed by id and lineage, on hand-built datasets."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from middo.cli.main import app
from middo.data.schema import sample_id, write_samples
from middo.errors import InputError
from middo.report.compare import FlagChange, flag_changes
from middo.report.diff import diff_datasets
from middo.report.revisions import Side


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
    assert result.counts() == {"kept": 1, "replaced": 2, "added": 2, "reverted": 0, "removed": 1}


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
    assert result.counts() == {"kept": 4, "replaced": 0, "added": 0, "reverted": 0, "removed": 0}
    assert result.kept == sorted(before["id"].to_list())


def test_round_numbers_resolve_to_dataset_files(tmp_path, rounds):
    before, _, _ = rounds
    write_samples(before, tmp_path / "data/r1/dataset.parquet")
    workspace = Side(tmp_path)
    assert workspace.dataset("1").equals(before) and workspace.label == "workspace"
    assert workspace.dataset(str(tmp_path / "data/r1/dataset.parquet")).equals(before)
    with pytest.raises(InputError, match="dvc repro"):
        workspace.dataset("2")
    with pytest.raises(InputError, match="Parquet"):
        workspace.dataset(str(tmp_path / "nope.parquet"))


def test_two_versions_of_one_round_revert_instead_of_adding_and_removing(rounds):
    before, after, (a, b, c, d, simpler, better, new, orphan) = rounds
    other = _frame([a, better, c, d])  # another run of the same round: kept a, did not synthesize
    result = diff_datasets(after, other)
    assert {(x.id, x.parent, x.op) for x in result.reverted} == {(simpler["id"], a["id"], "simplify")}
    assert result.removed == sorted([new["id"], orphan["id"]]) and a["id"] not in {x.id for x in result.added}
    assert {x.id for x in result.added} == {d["id"]}  # d has no lineage in `after`: it was lost there
    assert result.by_op() == {"replaced": {}, "added": {"seed": 1}, "reverted": {"simplify": 1}}


def test_flag_changes_name_each_sample_whose_flags_differ():
    flags = {"id": ["a", "b", "c"], "hard": [True, False, False], "sparse": [False, False, True],
             "low_quality": [False, True, False]}
    first, second = pl.DataFrame(flags), pl.DataFrame({**flags, "low_quality": [True, True, False]})
    assert flag_changes(first, second) == [FlagChange("a", ("hard",), ("hard", "low_quality"))]
    assert flag_changes(first, second.filter(pl.col("id") != "c"))[-1] == FlagChange("c", ("sparse",), None)
    assert flag_changes(first, first) == []


def test_cli_prints_counts_lists_and_examples(tmp_path, rounds):
    before, after, (a, _, _, d, simpler, *_) = rounds
    write_samples(before, tmp_path / "data/r0/dataset.parquet")
    write_samples(after, tmp_path / "data/r1/dataset.parquet")
    result = CliRunner().invoke(app, ["diff", "0", "1", "--show", "1", "--project", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "kept: 1  replaced: 2  added: 2  reverted: 0  removed: 1" in result.output
    assert "replaced by op: improve 1, simplify 1" in result.output
    assert f"removed  {d['id']}" in result.output
    assert f"replaced {a['id']} -> {simpler['id']} (simplify)" in result.output
    assert "before prompt:" in result.output and "easy question 0" in result.output
    assert all(f"{op}: " in result.output for op in ("simplify", "improve", "synthesize"))  # one example per op
    missing = CliRunner().invoke(app, ["diff", "0", "7", "--project", str(tmp_path)])
    assert missing.exit_code == 1 and "dvc repro" in missing.output
    three = CliRunner().invoke(app, ["diff", "0", "1", "--rev", "a", "--rev", "b", "--rev", "c"])
    assert three.exit_code == 2 and "give one (BEFORE) or two" in three.output


def test_cli_json_is_complete_and_bounded(tmp_path, rounds):
    before, after, (a, b, c, d, simpler, better, new, orphan) = rounds
    write_samples(before, tmp_path / "data/r0/dataset.parquet")
    write_samples(after, tmp_path / "data/r1/dataset.parquet")
    args = ["diff", "0", "1", "--json", "--project", str(tmp_path)]
    document = json.loads(CliRunner().invoke(app, args).output)
    assert document["counts"] == {"kept": 1, "replaced": 2, "added": 2, "reverted": 0, "removed": 1}
    assert document["before"] == {"dataset": "0", "rev": None, "samples": 4} and document["removed"] == [d["id"]]
    assert {x["id"] for x in document["replaced"]} == {simpler["id"], better["id"]} and not document["truncated"]
    assert "flags_changed" not in document  # two different rounds: no flags to compare
    bounded = json.loads(CliRunner().invoke(app, [*args, "--limit", "1"]).output)
    assert len(bounded["replaced"]) == 1 and bounded["truncated"] and bounded["counts"]["replaced"] == 2
