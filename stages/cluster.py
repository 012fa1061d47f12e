"""Cluster stage: faiss kNN of the prompt embeddings (`knn_sim`, neighbours) and k-means cluster ids.

dvc.yaml: python -m stages.cluster --embeddings data/r<r>/embeddings --output data/r<r>/knn.parquet
          --metrics data/r<r>/cluster.json
params: cluster
"""

from __future__ import annotations

from middo.config import section
from middo.signals.config import ClusterConfig
from middo.signals.knn import ClusterPaths, run_cluster
from middo.stage import stage_main


@stage_main(ClusterPaths, __doc__, outputs=("output", "metrics"))
def main(paths: ClusterPaths, params: dict) -> None:
    run_cluster(paths, section(ClusterConfig, params, "cluster"))


if __name__ == "__main__":
    main()
