"""Select stage: flag hard, sparse and low-quality samples of D(r-1) from the round's three signal tables.

dvc.yaml: python -m stages.select --data data/r<p>/dataset.parquet --scores data/r<r>/scores.parquet
          --knn data/r<r>/knn.parquet --ratings data/r<r>/ratings.parquet --output data/r<r>/flags.parquet
          --metrics data/r<r>/select.json --plot data/r<r>/select_hist.csv
params: select
"""

from __future__ import annotations

from middo.config import section
from middo.selection import SelectConfig
from middo.selection.run import SelectPaths, run_select
from middo.stage import stage_main


@stage_main(SelectPaths, __doc__, outputs=("output", "metrics", "plot"))
def main(paths: SelectPaths, params: dict) -> None:
    run_select(paths, section(SelectConfig, params, "select"))


if __name__ == "__main__":
    main()
