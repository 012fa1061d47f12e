"""Pretrain stage (only when params.yaml has a `pretrain` section): build the base model M0 from a config, with a
tokenizer trained on the corpus, and pretrain it briefly on plain text.

dvc.yaml: python -m stages.pretrain --texts <pretrain.corpus> --output <model.base> --metrics <model.base>.json
params: model, pretrain
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import ModelConfig, PretrainConfig
from middo.model.pretrain import PretrainPaths, run_pretrain
from middo.stage import stage_main


@stage_main(PretrainPaths, __doc__, outputs=("metrics",), output_dirs=("output",))
def main(paths: PretrainPaths, params: dict) -> None:
    run_pretrain(paths, section(PretrainConfig, params, "pretrain"), section(ModelConfig, params, "model"))


if __name__ == "__main__":
    main()
