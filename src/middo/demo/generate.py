"""Generate the demo's files from one seed: `seed.jsonl` (planted defects), `eval.jsonl` (clean), `corpus.txt`.

Every sample is an OpenAI chat row `{"messages": [...], "family": ..., "answer": ..., ...}`: ingestion keeps every
field but `messages` as the sample's `meta`, so `meta` holds `family`, `answer` (what the response says; the eval
stage matches it exactly), `item` (the structured question, so the answer can be recomputed), `planted` (null for
clean; `wrong_answer`, `garbled`, `over_hard`, or `rare_family` for an otherwise clean item of a rare family) and
`rare`. No signal may read `meta`: it is the ground truth the demo scores the signals against.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from middo.config import check
from middo.demo.corpus import corpus_lines
from middo.demo.defects import DEFECTS, garbled_prompt, wrong_answer
from middo.demo.families import FAMILIES
from middo.demo.tasks import Item, render, solve

DEFAULT_SEED = 0


@dataclass(frozen=True)
class SuiteConfig:
    """Shape of a generated demo suite; the defaults are the bundled `data/demo/`."""

    seed: int = DEFAULT_SEED
    """Random seed: the same seed regenerates identical files."""
    n_seed: int = 1500
    """Samples in the seed set."""
    n_eval: int = 300
    """Samples in the held-out eval set (an equal share per family)."""
    n_corpus: int = 6000
    """Lines of the pretraining corpus."""
    rates: dict[str, float] = field(
        default_factory=lambda: {"wrong_answer": 0.2, "garbled": 0.2, "over_hard": 0.2}
    )
    """Fraction of the seed set carrying each planted defect (disjoint; exact counts, rounded)."""
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "arith": 0.26, "list": 0.37, "fact": 0.16, "word": 0.16, "compare": 0.025, "count": 0.025
        }
    )  # fmt: skip
    """Share of each family in the seed set; families at or below `rare_share` are the rare ones."""
    rare_share: float = 0.05
    """A family whose weight is at most this share of the total is rare (the diversity signal's target)."""

    def __post_init__(self) -> None:
        check(self.n_seed >= 100 and self.n_eval >= len(FAMILIES), "n_seed must be >= 100 and n_eval >= 6")
        check(set(self.weights) == set(FAMILIES), f"weights must name exactly the families {sorted(FAMILIES)}")
        check(sum(self.rates.values()) < 0.9, "the planted defect rates must sum to less than 0.9")

    @property
    def rare_families(self) -> tuple[str, ...]:
        total = sum(self.weights.values())
        return tuple(name for name, w in self.weights.items() if w / total <= self.rare_share)


def _counts(shares: dict[str, float], n: int) -> dict[str, int]:
    """Exact integer counts for `shares` of `n` (largest remainder rounding)."""
    total = sum(shares.values())
    raw = {k: n * v / total for k, v in shares.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: counts[k] - raw[k])[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def _row(prompt: str, answer: str, item: Item, planted: str | None, rare: bool, extra: dict) -> dict:
    meta = {"family": item.family, "answer": answer, "item": item.to_json(), "planted": planted, "rare": rare}
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": messages, **meta, **extra}  # ingestion keeps every field but `messages` as the sample's meta


def seed_rows(cfg: SuiteConfig) -> list[dict]:
    """The seed set: family mix by `weights`, defects planted at `rates`, no prompt twice."""
    rng = random.Random(f"seed-set-{cfg.seed}")
    families = [name for name, n in _counts(cfg.weights, cfg.n_seed).items() for _ in range(n)]
    defect_counts = {k: round(v * cfg.n_seed) for k, v in cfg.rates.items()}
    defects = [k for k, n in defect_counts.items() for _ in range(n)]
    defects += [None] * (cfg.n_seed - len(defects))
    rng.shuffle(families)
    rng.shuffle(defects)
    rows, seen = [], set()
    for name, defect in zip(families, defects, strict=True):
        rows.append(_seed_row(name, defect, name in cfg.rare_families, rng, seen))
    return rows


def _seed_row(name: str, defect: str | None, rare: bool, rng: random.Random, seen: set[str]) -> dict:
    fam = FAMILIES[name]
    for _ in range(500):
        item = fam.draw(rng, hard=defect == "over_hard")
        template = rng.randrange(len(fam.templates(item)))
        extra = {}
        if defect == "garbled":
            prompt, extra["garble"] = garbled_prompt(item, template, rng)
        else:
            prompt = render(item, template)
        if prompt not in seen:
            seen.add(prompt)
            answer = wrong_answer(item, rng) if defect == "wrong_answer" else solve(item)
            planted = defect or ("rare_family" if rare else None)
            return _row(prompt, answer, item, planted, rare, extra)
    raise RuntimeError(f"family {name!r} ran out of distinct prompts; lower its weight or n_seed")


def eval_rows(cfg: SuiteConfig, seed_prompts: set[str]) -> list[dict]:
    """The held-out set: clean one-step items, an equal share per family, avoiding seed prompts where possible."""
    rng = random.Random(f"eval-set-{cfg.seed}")
    rows, taken = [], set()
    for name, n in _counts(dict.fromkeys(FAMILIES, 1.0), cfg.n_eval).items():
        fam = FAMILIES[name]
        for _ in range(n):
            for attempt in range(500):
                item = fam.draw(rng, hard=False)
                prompt = render(item, rng.randrange(len(fam.templates(item))))
                # a family with few distinct questions may reuse a seed prompt after many tries, never an eval one
                if prompt not in taken and (prompt not in seed_prompts or attempt >= 200):
                    break
            else:
                raise RuntimeError(f"family {name!r} ran out of distinct eval prompts; lower n_eval")
            taken.add(prompt)
            rows.append(_row(prompt, solve(item), item, None, False, {"in_seed": prompt in seed_prompts}))
    return rows


def write_suite(out_dir: str | Path, cfg: SuiteConfig) -> dict[str, Path]:
    """Write seed.jsonl, eval.jsonl and corpus.txt into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = seed_rows(cfg)
    evaluation = eval_rows(cfg, {row["messages"][0]["content"] for row in seed})
    paths = {"seed": out_dir / "seed.jsonl", "eval": out_dir / "eval.jsonl", "corpus": out_dir / "corpus.txt"}
    for key, rows in (("seed", seed), ("eval", evaluation)):
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        paths[key].write_text(text, encoding="utf-8")
    paths["corpus"].write_text("\n".join(corpus_lines(cfg.n_corpus, cfg.seed)) + "\n", encoding="utf-8")
    paths["readme"] = out_dir / "README.md"
    paths["readme"].write_text(readme_text(cfg, seed, evaluation), encoding="utf-8")
    return paths


def readme_text(cfg: SuiteConfig, seed: list[dict], evaluation: list[dict]) -> str:
    """The README of a generated suite: how it was made and what it holds."""
    planted = Counter(row["planted"] or "clean" for row in seed)
    families = Counter(row["family"] for row in seed)
    examples = {}
    for row in seed:
        examples.setdefault(row["planted"] or "clean", row["messages"])
    lines = [
        "# Demo task suite (generated)",
        "",
        f"Written by `middo demo generate --seed {cfg.seed}` (`middo.demo.generate`); the same seed rewrites these",
        "files byte for byte. Do not edit them by hand.",
        "",
        f"- `seed.jsonl`: {len(seed)} OpenAI chat samples with planted defects (the loop's D0).",
        f"- `eval.jsonl`: {len(evaluation)} clean held-out samples, {len(evaluation) // len(FAMILIES)} per family; "
        f"{sum(r['in_seed'] for r in evaluation)} of their prompts also occur in the seed set.",
        f"- `corpus.txt`: {cfg.n_corpus} plain-text sentences about the same fictional world for pretraining M0;",
        "  statements, never the question/answer form of the tasks.",
        "",
        "Each row is `{\"messages\": [...], ...}`; ingestion keeps the fields besides `messages` as the sample's",
        "`meta`: `family`, `answer` (what the response says; the eval stage matches it exactly),",
        "`item` (the structured question, so the correct answer can be recomputed), `rare` and `planted`: the",
        "ground truth that `middo demo` and `bench/loop_value.py` score the signals against. No signal reads it.",
        "",
        "| planted | count | example |",
        "|---|---|---|",
    ]
    for kind in ("clean", *DEFECTS, "rare_family"):
        messages = examples.get(kind)
        example = f"`{messages[0]['content']}` -> `{messages[1]['content']}`" if messages else ""
        lines.append(f"| {kind} | {planted.get(kind, 0)} | {example} |")
    lines += ["", "| family | seed samples | rare |", "|---|---|---|"]
    lines += [f"| {name} | {families.get(name, 0)} | {name in cfg.rare_families} |" for name in FAMILIES]
    lines += [
        "",
        "`wrong_answer`: a plausible wrong response. `garbled`: typos in the wording, or a part of the question left",
        "out. `over_hard`: multi-digit arithmetic, long chains or lists, two-hop lookups, whose one-step forms teach",
        "the same skill. `rare_family`: an otherwise clean sample of a rare family (the diversity signal's target).",
        "",
    ]
    return "\n".join(lines)
