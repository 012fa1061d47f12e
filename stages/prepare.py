"""Prepare stage: ingest the seed set into D(0) and the held-out eval set, counting rows kept, skipped, duplicated.

dvc.yaml: python -m stages.prepare --output data/r0/dataset.parquet --eval-output data/eval.parquet
          --metrics data/r0/prepare.json
params: data (the inputs are `data.seed` and `data.eval`)
"""

from __future__ import annotations

from middo.config import section
from middo.data.config import DataConfig
from middo.data.prepare import PreparePaths, run_prepare
from middo.stage import stage_main


@stage_main(PreparePaths, __doc__, outputs=("output", "eval_output", "metrics"))
def main(paths: PreparePaths, params: dict) -> None:
    run_prepare(paths, section(DataConfig, params, "data"))


if __name__ == "__main__":
    main()
