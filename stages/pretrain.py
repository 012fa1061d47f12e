"""Demo only: build the base model M0 (tokenizer trained on the corpus) and pretrain it briefly on plain text.

dvc.yaml: python -m stages.pretrain --texts data/demo/corpus.txt --output models/base --metrics models/base.json
params: pretrain.*, model.*
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.log import write_metrics
from middo.model.config import ModelConfig, PretrainConfig
from middo.model.pretrain import build_and_pretrain


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", required=True, nargs="+", help="plain-text files, one text per line")
    parser.add_argument("--output", required=True, help="output model dir")
    parser.add_argument("--metrics", required=True, help="metrics JSON")
    parser.add_argument("--log", default=None, help="per-step loss CSV (a DVC plot)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = section(PretrainConfig, params, "pretrain")
    model_config = section(ModelConfig, params, "model")
    metrics = build_and_pretrain(args.texts, args.output, config, model_config, args.log)
    write_metrics(metrics, args.metrics)


if __name__ == "__main__":
    main()
