"""Select stage: flag hard, sparse and low-quality samples of D(r-1) from the round's three signal tables.

    python -m stages.select --data data/r<p>/dataset.parquet --scores data/r<r>/scores.parquet \
        --knn data/r<r>/knn.parquet --ratings data/r<r>/ratings.parquet --output data/r<r>/flags.parquet \
        --metrics data/r<r>/select.json --plot data/r<r>/select_hist.csv

Reads params section `select`.
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.selection import SelectConfig, run_select


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset D(r-1) (Parquet)")
    parser.add_argument("--scores", required=True, help="losses table of the round (Parquet)")
    parser.add_argument("--knn", required=True, help="neighbours table of the round (Parquet)")
    parser.add_argument("--ratings", required=True, help="judge ratings table of the round (Parquet)")
    parser.add_argument("--output", required=True, help="flags table to write (Parquet)")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--plot", default=None, help="histogram CSV to write (signal, bins, flagged, threshold)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    config = section(SelectConfig, load_params(args.params), "select")
    run_select(args.data, args.scores, args.knn, args.ratings, args.output, args.metrics, config, plot=args.plot)


if __name__ == "__main__":
    main()
