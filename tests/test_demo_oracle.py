"""The oracle round: every planted defect fixed from the ground truth, rare families joined by new items."""

from __future__ import annotations

import json

import polars as pl

from middo.data.ingest import seed_sample
from middo.data.schema import SAMPLE_SCHEMA, validate_samples
from middo.demo.defects import DEFECTS
from middo.demo.generate import SuiteConfig, seed_rows
from middo.demo.oracle import oracle_round
from middo.demo.tasks import family, recognise, solve
from middo.refine.conservation import check_conservation


def seed_frame(rows: list[dict]) -> pl.DataFrame:
    """The seed rows as ingestion stores them (every field but `messages` in `meta`)."""
    samples = [seed_sample(row["messages"], "seed", {k: v for k, v in row.items() if k != "messages"}) for row in rows]
    return validate_samples(pl.DataFrame(samples, schema=SAMPLE_SCHEMA))


def test_oracle_fixes_every_defect_and_adds_one_item_per_clean_rare_sample():
    rows = seed_rows(SuiteConfig(n_seed=400))
    seed = seed_frame(rows)
    planted = [row["planted"] for row in rows]
    n_defects = sum(p in DEFECTS for p in planted)
    n_rare_clean = sum(row["rare"] and row["planted"] not in DEFECTS for row in rows)
    assert n_defects > 0 and n_rare_clean > 0

    oracle = oracle_round(seed, seed=0)

    counts = check_conservation(seed["id"].to_list(), oracle)
    assert counts == {"kept": len(rows) - n_defects, "replaced": n_defects, "added": n_rare_clean}
    children = oracle.filter(pl.col("op") != "seed")
    assert sorted(children["op"].unique().to_list()) == ["improve", "simplify", "synthesize"]
    for messages, meta in zip(children["messages"].to_list(), children["meta"].to_list(), strict=True):
        item = recognise(messages[0]["content"])
        assert item is not None and item.complete and not family(item.family).is_hard(item)
        assert messages[1]["content"] == solve(item) == json.loads(meta)["answer"]
        assert json.loads(meta)["planted"] is None
    replaced = children.filter(pl.col("op") != "synthesize")["parent"]
    assert oracle.filter(pl.col("op") == "seed").equals(seed.filter(~pl.col("id").is_in(replaced)))


def test_oracle_children_keep_their_parents_family_and_the_same_seed_gives_the_same_round():
    seed = seed_frame(seed_rows(SuiteConfig(n_seed=300)))
    oracle = oracle_round(seed, seed=3)
    parent_family = dict(zip(seed["id"], [json.loads(m)["family"] for m in seed["meta"]], strict=True))
    for parent, messages in oracle.filter(pl.col("op") != "seed").select("parent", "messages").iter_rows():
        assert recognise(messages[0]["content"]).family == parent_family[parent]
    assert oracle.equals(oracle_round(seed, seed=3))
    assert not oracle.equals(oracle_round(seed, seed=4))
