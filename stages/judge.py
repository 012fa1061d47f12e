"""Judge stage: six 0-10 ratings per sample (prompt and response: factuality, clarity, completeness) and `quality`.

    python -m stages.judge --data data/r<p>/dataset.parquet --model models/r<r> \
        --output data/r<r>/ratings.parquet --metrics data/r<r>/judge.json --plot data/r<r>/judge_hist.csv

Reads params sections `model`, `judge` and `teacher` (the endpoint that judges when `judge.mode` is `openai`).
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.model.config import ModelConfig
from middo.signals.config import JudgeConfig
from middo.signals.judge import run_judge
from middo.teacher import TeacherConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset D(r-1) (Parquet)")
    parser.add_argument("--model", required=True, help="round model Mr (the judge in modes logits and generate)")
    parser.add_argument("--output", required=True, help="ratings table to write (Parquet)")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--plot", required=True, help="histogram CSV of the ratings (DVC plot data)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    model_cfg = section(ModelConfig, params, "model")
    judge_cfg = section(JudgeConfig, params, "judge")
    teacher_cfg = section(TeacherConfig, params, "teacher")
    run_judge(args.data, args.model, args.output, args.metrics, args.plot, model_cfg, judge_cfg, teacher_cfg)


if __name__ == "__main__":
    main()
