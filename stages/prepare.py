"""Ingest the seed set into D(0) and the held-out eval set, with counts of rows read, kept, skipped and duplicated.

dvc.yaml: python -m stages.prepare --input data/demo/seed.jsonl --eval-input data/demo/eval.jsonl
          --output data/r0/dataset.parquet --eval-output data/eval.parquet --metrics data/r0/prepare.json
params: data.*
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.data.config import DataConfig
from middo.data.prepare import prepare
from middo.log import write_metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", nargs="+", help="seed input(s); when omitted, data.seed from params")
    parser.add_argument("--eval-input", help="held-out eval input; when omitted, data.eval from params")
    parser.add_argument("--output", required=True, help="D(0) dataset Parquet file")
    parser.add_argument("--eval-output", required=True, help="eval dataset Parquet file")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    config = section(DataConfig, load_params(args.params), "data")
    seed_inputs = args.input or list(config.seed_inputs)
    metrics = prepare(config, seed_inputs, args.eval_input or config.eval, args.output, args.eval_output)
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
