"""Cluster stage: faiss kNN of the prompt embeddings centred on their mean (`knn_sim`, neighbours), k-means ids.

    python -m stages.cluster --embeddings data/r<r>/embeddings --output data/r<r>/knn.parquet \
        --metrics data/r<r>/cluster.json

Reads params section `cluster`.
"""

from __future__ import annotations

import argparse

from middo.config import load_params, section
from middo.signals.config import ClusterConfig
from middo.signals.knn import run_cluster


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", required=True, help="embeddings directory written by the score stage")
    parser.add_argument("--output", required=True, help="knn table to write (Parquet)")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    cfg = section(ClusterConfig, load_params(args.params), "cluster")
    run_cluster(args.embeddings, args.output, args.metrics, cfg)


if __name__ == "__main__":
    main()
