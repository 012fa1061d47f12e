"""Eval stage: held-out NLL and greedy exact match of a round's model.

dvc.yaml: python -m stages.eval --model models/r<r> --data data/eval.parquet --metrics data/r<r>/eval.json
params: model, eval
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import EvalConfig, ModelConfig
from middo.model.evaluate import EvalPaths, run_eval
from middo.stage import stage_main


@stage_main(EvalPaths, __doc__)
def main(paths: EvalPaths, params: dict) -> None:
    run_eval(paths, section(EvalConfig, params, "eval"), section(ModelConfig, params, "model"))


if __name__ == "__main__":
    main()
