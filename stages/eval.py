"""Eval stage: held-out NLL and greedy exact match of a round's model, and the `eval.tasks` benchmarks through
lm-evaluation-harness. Stage eval-0 runs it on M0 (`--model ${model.base}`, `data/r0/eval.json`).

dvc.yaml: python -m stages.eval --model models/r<r> --data data/eval.parquet --metrics data/r<r>/eval.json
params: model, eval
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import EvalConfig, ModelConfig
from middo.model.evaluate import EvalPaths, run_eval
from middo.stage import stage_main


@stage_main(EvalPaths, __doc__, outputs=("metrics",))
def main(paths: EvalPaths, params: dict) -> None:
    run_eval(paths, section(EvalConfig, params, "eval"), section(ModelConfig, params, "model"))


if __name__ == "__main__":
    main()
