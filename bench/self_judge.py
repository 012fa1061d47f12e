"""SmolLM2-135M-Instruct rating itself (`judge.mode: logits`): score-token mass and what the health check says.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python bench/self_judge.py [--n 20]

The `n` shortest conversations of bench/out/train/sharegpt_64.jsonl (written by bench/train.py), rated with the
default judge settings; prints the mass figures and the judge stage's health verdict (the message a user sees).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from middo.model.config import ModelConfig
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, judge_samples
from middo.signals.judge_health import JudgeFailure, apply_health

OUT = Path(__file__).parent / "out" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (OUT / "sharegpt_64.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda row: sum(len(m["content"]) for m in row["messages"]))
    cfg = JudgeConfig(mode="logits", token_budget=4096)
    started = time.perf_counter()
    judge = Judge(cfg, OUT / "smollm2", ModelConfig(base="unused", device="cpu", max_length=512))
    result = judge_samples(rows[: args.n], judge)
    keys = ("samples", "ratings", "nan_ratings", "score_mass_mean", "score_mass_median", "score_mass_min")
    figures = {key: result.metrics[key] for key in keys} | {"seconds": round(time.perf_counter() - started, 1)}
    try:
        apply_health(result.table, result.metrics, cfg)
        figures["verdict"] = "usable"
    except JudgeFailure as exc:
        figures["verdict"] = f"error: {exc}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
