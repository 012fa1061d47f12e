"""Train stage: SFT of the base model M0 on a round's dataset through TRL (loss on every assistant turn); reuses the
previous round's model when that was trained on the same data and settings.

dvc.yaml: [launcher] python -m stages.train --data data/r<p>/dataset.parquet --base <M0> --output models/r<r>
          --metrics data/r<r>/train.json --checkpoints checkpoints/r<r> --live data/r<r>/live [--reuse models/r<p>]
params: model, train
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import ModelConfig, TrainConfig
from middo.model.train import TrainPaths, run_train
from middo.stage import stage_main


@stage_main(TrainPaths, __doc__)
def main(paths: TrainPaths, params: dict) -> None:
    run_train(paths, section(TrainConfig, params, "train"), section(ModelConfig, params, "model"))


if __name__ == "__main__":
    main()
