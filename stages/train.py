"""SFT of the base model M0 on a round's dataset (loss on assistant tokens only).

dvc.yaml: python -m stages.train --data data/r<p>/dataset.parquet --base <M0> --output models/r<r>
          --metrics data/r<r>/train.json --log data/r<r>/train_log.csv
params: train.*, model.*
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.data.schema import read_samples
from middo.log import write_metrics
from middo.model.config import ModelConfig, TrainConfig
from middo.model.train import train_sft


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset Parquet file D(r-1)")
    parser.add_argument("--base", required=True, help="base model M0: model dir, hub id or .gguf file")
    parser.add_argument("--output", required=True, help="output model dir M(r)")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    parser.add_argument("--log", default=None, help="per-step loss CSV (a DVC plot)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = section(TrainConfig, params, "train")
    model_config = section(ModelConfig, params, "model")
    samples = read_samples(args.data).select("id", "messages").to_dicts()
    metrics = train_sft(args.base, samples, config, model_config, args.output, args.log)
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
