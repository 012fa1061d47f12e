"""The ground-truth audit: it recomputes each task from its text, agrees with the planted labels of a generated
suite, finds no defect in the simulated teacher's correct children, and the demo summary counts defects per round."""

from __future__ import annotations

import random

import polars as pl

from middo.data.ingest import seed_sample
from middo.data.schema import SAMPLE_SCHEMA, write_samples
from middo.demo.audit import AUDIT_KINDS, audit_counts, sample_defect, task_defect
from middo.demo.families import FAMILIES
from middo.demo.generate import SuiteConfig, seed_rows
from middo.demo.oracle import oracle_round
from middo.demo.report import dataset_defects, format_summary
from middo.demo.tasks import render, solve
from middo.demo.teacher import FRAMES


def test_audit_agrees_with_every_planted_label_of_a_suite():
    rows = seed_rows(SuiteConfig(n_seed=600, seed=4))
    for row in rows:
        expected = None if row["planted"] in (None, "rare_family") else row["planted"]
        assert sample_defect(row["messages"]) == expected, row


def test_clean_tasks_in_teacher_frames_pass_and_each_defect_is_named():
    for name, fam in FAMILIES.items():
        rng = random.Random(name)
        item = fam.draw(rng, hard=False)
        for frame in FRAMES:
            assert task_defect(frame.format(q=render(item, 0)), solve(item) + ".") is None
        assert task_defect(render(item, 0), fam.wrong(item, rng)) == "wrong_answer"
        hard = fam.draw(rng, hard=True)
        assert task_defect(render(hard, 0), solve(hard)) == "over_hard"
    assert task_defect("Tell me a story.", "Once upon a time.") == "unreadable"
    assert task_defect("Whta is 2 + 3?", "5") == "garbled"


def test_counts_and_the_summary_show_defects_falling_after_an_oracle_round(tmp_path):
    rows = seed_rows(SuiteConfig(n_seed=200, seed=5))
    meta_of = [{key: value for key, value in row.items() if key != "messages"} for row in rows]
    frame = pl.DataFrame([seed_sample(row["messages"], "seed", meta) for row, meta in zip(rows, meta_of, strict=True)],
                         schema=SAMPLE_SCHEMA)
    write_samples(frame, tmp_path / "data" / "r0" / "dataset.parquet")
    write_samples(oracle_round(frame, seed=0), tmp_path / "data" / "r1" / "dataset.parquet")
    found = dataset_defects(tmp_path)
    planted = [row["planted"] for row in rows]
    assert found[0] == audit_counts(frame["messages"].to_list())
    assert [found[0][kind] for kind in AUDIT_KINDS] == [planted.count(k) for k in (*AUDIT_KINDS[:3], "unreadable")]
    assert found[0]["defective"] == sum(p not in (None, "rare_family") for p in planted) > 0
    assert found[1]["defective"] == 0 and found[1]["total"] > found[0]["total"]
    text = format_summary({"rounds": {}, "eval": {}, "teacher": {}, "defects": found})
    assert f"D0 {found[0]['defective']}/{found[0]['total']} -> D1 0/{found[1]['total']}" in text
