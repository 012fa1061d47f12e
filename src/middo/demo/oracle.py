"""The oracle control: one round of refinement with perfect signals and a perfect teacher, from the ground truth.

Every sample with a planted per-item defect (wrong answer, garbled prompt, over-hard item) is replaced by a clean,
correct, easy item of its family (what `improve` or `simplify` would ideally write), and every otherwise clean
sample of a rare family gets one new item of its family beside it (the ideal `synthesize`). No signal and no
teacher is involved: it reads `meta`, which the pipeline never may. Training on it bounds what one round of the
loop can gain on the suite; if the oracle does not beat the seed model, no selection can.
"""

from __future__ import annotations

import random

import polars as pl

from middo.data.schema import SAMPLE_SCHEMA, meta_json, sample_id, sample_meta, validate_samples
from middo.demo.defects import DEFECTS
from middo.demo.tasks import Item, family, render, solve
from middo.refine.conservation import check_conservation


def oracle_round(dataset: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """D(1) of the oracle: planted defects replaced by fixed children, rare-family samples joined by a new one."""
    rng = random.Random(seed)
    taken = set(dataset["id"].to_list())
    rows = []
    for row in dataset.iter_rows(named=True):
        meta = sample_meta(row["meta"], row["id"])
        planted = meta.get("planted")
        if planted in DEFECTS:
            rows.append(_child(row, meta, _fixed(Item.from_json(meta["item"]), rng), _op(planted), taken, rng))
            continue
        rows.append(row)
        if meta.get("rare"):
            fresh = family(meta["family"]).draw(rng, hard=False)
            rows.append(_child(row, meta, fresh, "synthesize", taken, rng))
    frame = validate_samples(pl.DataFrame(rows, schema=SAMPLE_SCHEMA), where="oracle round")
    check_conservation(dataset["id"].to_list(), frame)
    return frame


def _op(planted: str) -> str:
    return "simplify" if planted == "over_hard" else "improve"


def _fixed(item: Item, rng: random.Random) -> Item:
    """The item a perfect teacher would write: completed when a part is missing, simplified when over-hard."""
    fam = family(item.family)
    item = item if item.complete else fam.fill(item, rng)
    return fam.simplify(item) if fam.is_hard(item) else item


def _child(parent: dict, meta: dict, item: Item, op: str, taken: set[str], rng: random.Random) -> dict:
    """A clean, correct sample of `item` (another item of its family if that one is already in the dataset)."""
    fam = family(item.family)
    for _ in range(50):
        messages = [{"role": "user", "content": render(item, rng.randrange(len(fam.templates(item))))},
                    {"role": "assistant", "content": solve(item)}]
        child_id = sample_id(messages)
        if child_id not in taken:
            break
        item = fam.draw(rng, hard=False)
    else:
        raise RuntimeError(f"oracle: no unused item of family {item.family!r} after 50 draws; the suite is too dense")
    taken.add(child_id)
    child_meta = {**meta, "answer": solve(item), "item": item.to_json(), "planted": None, "oracle": op}
    return {"id": child_id, "messages": messages, "source": parent["source"], "round": 1, "parent": parent["id"],
            "op": op, "meta": meta_json(child_meta)}
