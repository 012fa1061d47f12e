"""Score stage: `loss_pre` under M0, `loss_cur` and prompt embeddings under Mr (one pass); base losses reused by id.

    python -m stages.score --data data/r<p>/dataset.parquet --base <M0> --model models/r<r> \
        --output data/r<r>/scores.parquet --embeddings data/r<r>/embeddings --metrics data/r<r>/score.json \
        [--reuse data/r<p>/scores.parquet]

Reads params sections `model` and `score`.
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.model.config import ModelConfig
from middo.signals.config import ScoreConfig
from middo.signals.loss import run_score


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset D(r-1) (Parquet)")
    parser.add_argument("--base", required=True, help="base model M0 (dir, hub id or .gguf)")
    parser.add_argument("--model", required=True, help="round model Mr (dir)")
    parser.add_argument("--output", required=True, help="scores table to write (Parquet)")
    parser.add_argument("--embeddings", required=True, help="directory for the prompt embeddings under Mr")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--reuse", default=None, help="previous round's scores table: base losses reused by id")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    model_cfg = section(ModelConfig, params, "model")
    score_cfg = section(ScoreConfig, params, "score")
    run_score(args.data, args.base, args.model, args.output, args.embeddings, args.metrics, model_cfg, score_cfg,
              reuse=args.reuse)


if __name__ == "__main__":
    main()
