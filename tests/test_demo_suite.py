"""Demo task suite: deterministic generation, planted defect rates, a clean balanced eval set, checkable answers."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from middo.data.schema import sample_id
from middo.demo.defects import garbled_prompt, underspecified
from middo.demo.families import FAMILIES
from middo.demo.generate import SuiteConfig, write_suite
from middo.demo.tasks import Item, family, recognise, render, solve

REPO = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path) -> list[dict]:
    """Rows as ingestion sees them: `messages`, and every other field in `meta`."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{"messages": row.pop("messages"), "meta": row} for row in rows]


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> dict[str, Path]:
    return write_suite(tmp_path_factory.mktemp("suite"), SuiteConfig())


def test_same_seed_same_bytes_other_seed_other_files(suite, tmp_path):
    again = write_suite(tmp_path / "again", SuiteConfig())
    other = write_suite(tmp_path / "other", SuiteConfig(seed=7))
    for key in ("seed", "eval", "corpus", "readme"):
        assert again[key].read_bytes() == suite[key].read_bytes(), key
    assert other["seed"].read_bytes() != suite["seed"].read_bytes()
    assert other["eval"].read_bytes() != suite["eval"].read_bytes()


def test_bundled_files_are_the_default_seed_output(suite):
    bundled = REPO / "data" / "demo"
    for key in ("seed", "eval", "corpus", "readme"):
        bundled_bytes = (bundled / suite[key].name).read_bytes()
        assert bundled_bytes == suite[key].read_bytes(), f"{key} is stale: run `middo demo generate`"
    assert sum(p.stat().st_size for p in bundled.iterdir()) < 2_000_000


def test_planted_defect_rates_and_family_mix(suite):
    cfg = SuiteConfig()
    rows = read_jsonl(suite["seed"])
    assert len(rows) == cfg.n_seed
    planted = Counter(row["meta"]["planted"] for row in rows)
    for defect, rate in cfg.rates.items():
        assert abs(planted[defect] / len(rows) - rate) <= 0.005, (defect, planted[defect])
    families = Counter(row["meta"]["family"] for row in rows)
    assert set(families) == set(FAMILIES)
    rare = set(cfg.rare_families)
    assert rare == {"compare", "count"}
    for name, n in families.items():
        share = n / len(rows)
        assert (share <= cfg.rare_share) == (name in rare), (name, share)
    assert all(row["meta"]["rare"] == (row["meta"]["family"] in rare) for row in rows)
    clean_rare = [row for row in rows if row["meta"]["rare"] and row["meta"]["planted"] in (None, "rare_family")]
    assert clean_rare and all(row["meta"]["planted"] == "rare_family" for row in clean_rare)
    n_defects = sum(planted[defect] for defect in cfg.rates)
    assert planted[None] + planted["rare_family"] == len(rows) - n_defects > 0


def test_every_seed_answer_is_checkable(suite):
    rows = read_jsonl(suite["seed"])
    assert len({sample_id(row["messages"]) for row in rows}) == len(rows), "ids must be unique"
    for row in rows:
        meta, (user, assistant) = row["meta"], row["messages"]
        item = Item.from_json(meta["item"])
        fam = family(item.family)
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert assistant["content"] == meta["answer"] and meta["family"] == item.family
        if meta["planted"] == "wrong_answer":
            assert solve(item) != meta["answer"], row
        else:
            assert solve(item) == meta["answer"], row
        assert fam.is_hard(item) == (meta["planted"] == "over_hard"), row
        canonical = {render(item, t) for t in range(len(fam.templates(item)))}
        assert (user["content"] in canonical) == (meta["planted"] != "garbled"), row


def test_eval_set_is_clean_balanced_and_held_out(suite):
    rows = read_jsonl(suite["eval"])
    seed_prompts = {row["messages"][0]["content"] for row in read_jsonl(suite["seed"])}
    assert len(rows) == SuiteConfig().n_eval
    assert set(Counter(row["meta"]["family"] for row in rows).values()) == {len(rows) // len(FAMILIES)}
    assert len({row["messages"][0]["content"] for row in rows}) == len(rows)
    for row in rows:
        item = Item.from_json(row["meta"]["item"])
        assert row["meta"]["planted"] is None and not family(item.family).is_hard(item)
        assert solve(item) == row["meta"]["answer"] == row["messages"][1]["content"]
        assert row["meta"]["in_seed"] == (row["messages"][0]["content"] in seed_prompts)
    assert sum(row["meta"]["in_seed"] for row in rows) < 0.1 * len(rows)


def test_corpus_is_plain_text_not_the_tasks(suite):
    lines = suite["corpus"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == SuiteConfig().n_corpus
    prompts = {row["messages"][0]["content"] for row in read_jsonl(suite["seed"])}
    assert not prompts & set(lines)
    assert not any("?" in line for line in lines), "the corpus holds statements, not questions"
    text = "\n".join(lines)
    assert "Palmu is the capital of Vendora." in text or "The capital city of Vendora is Palmu." in text


@pytest.mark.parametrize("name", list(FAMILIES))
def test_families_read_back_their_own_prompts_even_garbled(name):
    rng = random.Random(name)
    fam = FAMILIES[name]
    misread = 0
    for _ in range(100):
        for hard in (False, True):
            item = fam.draw(rng, hard)
            assert fam.is_hard(item) == hard
            assert not fam.is_hard(fam.simplify(item)) and fam.simplify(item).family == name
            for t in range(len(fam.templates(item))):
                assert recognise(render(item, t)) == item
        item = fam.draw(rng, hard=False)
        prompt, how = garbled_prompt(item, rng.randrange(len(fam.templates(item))), rng)
        got = recognise(prompt)
        expected = item if how == "noise" else underspecified(item)
        misread += got != expected
        if how == "missing":
            assert got is not None and not got.complete and fam.fill(got, rng).complete
    assert misread <= 3, f"{misread} garbled {name} prompts misread"
