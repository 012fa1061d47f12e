"""Held-out evaluation of a round's model: mean assistant-token NLL and greedy exact match.

dvc.yaml: python -m stages.eval --model models/r<r> --data data/eval.parquet --metrics data/r<r>/eval.json
params: eval.*, model.*
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.data.schema import read_samples
from middo.log import write_metrics
from middo.model.config import EvalConfig, ModelConfig
from middo.model.evaluate import evaluate_model
from middo.model.load import load_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model dir to evaluate")
    parser.add_argument("--data", required=True, help="held-out dataset Parquet file")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = section(EvalConfig, params, "eval")
    model_config = section(ModelConfig, params, "model")
    model, tokenizer = load_model(args.model, device=model_config.device, dtype=model_config.dtype)
    samples = read_samples(args.data).select("id", "messages", "meta").to_dicts()
    metrics = evaluate_model(model, tokenizer, samples, config, model_config.max_length, model_config.chat_template)
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
