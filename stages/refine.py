"""Refine stage: the teacher rewrites flagged samples of D(r-1); each child passes the gate or the parent stays.

dvc.yaml: python -m stages.refine --data data/r<p>/dataset.parquet --flags data/r<r>/flags.parquet
          --knn data/r<r>/knn.parquet --embeddings data/r<r>/embeddings --base <M0> --model models/r<r>
          --round <r> --output data/r<r>/dataset.parquet --metrics data/r<r>/refine.json
          --log data/r<r>/refine_log.parquet
params: model, refine, teacher (its API key comes from the environment variable named by `teacher.api_key_env`),
        judge (the gate rates improved samples with the round's judge), cluster (`cluster.center`: the gate
        measures density in the cluster stage's geometry), embed (the gate pools embeddings as score does)
"""

from __future__ import annotations

from middo.config import section
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.run import RefinePaths, run_refine
from middo.signals.config import ClusterConfig, JudgeConfig
from middo.signals.judge import Judge
from middo.stage import stage_main
from middo.teacher import TeacherConfig, make_teacher
from middo.teacher.limits import spending_checked


@stage_main(RefinePaths, __doc__, outputs=("output", "metrics", "log"))
def main(paths: RefinePaths, params: dict) -> None:
    teacher_cfg = section(TeacherConfig, params, "teacher")
    judge_cfg = section(JudgeConfig, params, "judge")
    model_cfg = section(ModelConfig, params, "model")
    center = section(ClusterConfig, params, "cluster").center
    pooling = section(EmbedConfig, params, "embed")
    with make_teacher(teacher_cfg) as teacher, spending_checked(teacher):  # a cap's stop fails the stage, naming it
        judge = Judge(judge_cfg, paths.model, model_cfg, teacher if judge_cfg.mode == "openai" else None)
        refine_cfg = section(RefineConfig, params, "refine")
        run_refine(paths, teacher, refine_cfg, judge, center, teacher_cfg.temperature, pooling)


if __name__ == "__main__":
    main()
