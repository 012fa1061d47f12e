"""Refine stage: the teacher rewrites flagged samples of D(r-1); each child passes the gate or the parent stays.

    python -m stages.refine --data data/r<p>/dataset.parquet --flags data/r<r>/flags.parquet \
        --knn data/r<r>/knn.parquet --embeddings data/r<r>/embeddings --model models/r<r> --round <r> \
        --output data/r<r>/dataset.parquet --metrics data/r<r>/refine.json [--log data/r<r>/refine_log.parquet]

Reads params sections `model`, `refine`, `teacher`, `judge` (the gate rates improved samples with the judge) and
`cluster` (`cluster.center`: the gate measures density in the cluster stage's geometry).
The teacher's API key comes from the environment variable named by `teacher.api_key_env`.
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.model.config import ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.run import run_refine
from middo.signals.config import ClusterConfig, JudgeConfig
from middo.teacher import TeacherConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset D(r-1) (Parquet)")
    parser.add_argument("--flags", required=True, help="flags table of the round (Parquet)")
    parser.add_argument("--knn", required=True, help="neighbours table of the round (Parquet)")
    parser.add_argument("--embeddings", required=True, help="prompt embeddings of D(r-1) under Mr (directory)")
    parser.add_argument("--model", required=True, help="round model Mr (dir): child losses, embeddings, judge")
    parser.add_argument("--round", required=True, type=int, help="round number r (written to new samples)")
    parser.add_argument("--output", required=True, help="dataset D(r) to write (Parquet)")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--log", default=None, help="optional refine log to write: one row per attempt (Parquet)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    if args.round < 1:
        parser.error(f"--round {args.round}: rounds count from 1 (round 0 is the seed set)")
    params = load_params(args.params)
    model_cfg = section(ModelConfig, params, "model")
    refine_cfg = section(RefineConfig, params, "refine")
    teacher_cfg = section(TeacherConfig, params, "teacher")
    judge_cfg = section(JudgeConfig, params, "judge")
    cluster_cfg = section(ClusterConfig, params, "cluster")
    run_refine(args.data, args.flags, args.knn, args.embeddings, args.model, args.round, args.output, args.metrics,
               model_cfg, refine_cfg, teacher_cfg, judge_cfg, centered=cluster_cfg.center, log_path=args.log)


if __name__ == "__main__":
    main()
