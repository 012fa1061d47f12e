"""Score stage: `loss_pre` under M0, `loss_cur` and prompt embeddings under Mr (one pass); base losses reused by id.

dvc.yaml: python -m stages.score --data data/r<p>/dataset.parquet --base <M0> --model models/r<r>
          --output data/r<r>/scores.parquet --embeddings data/r<r>/embeddings --metrics data/r<r>/score.json
          [--reuse data/r<p>/scores.parquet]
params: model, score, embed
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import EmbedConfig, ModelConfig
from middo.signals.config import ScoreConfig
from middo.signals.loss import ScorePaths, run_score
from middo.stage import stage_main


@stage_main(ScorePaths, __doc__, outputs=("output", "metrics"), output_dirs=("embeddings",))
def main(paths: ScorePaths, params: dict) -> None:
    pooling = section(EmbedConfig, params, "embed")
    run_score(paths, section(ModelConfig, params, "model"), section(ScoreConfig, params, "score"), pooling)


if __name__ == "__main__":
    main()
