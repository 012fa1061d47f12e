"""Judge stage: six 0-10 ratings per sample (prompt and response: factuality, clarity, completeness) and `quality`.

dvc.yaml: python -m stages.judge --data data/r<p>/dataset.parquet --model models/r<r>
          --output data/r<r>/ratings.parquet --metrics data/r<r>/judge.json --plot data/r<r>/judge_hist.csv
params: model, judge, teacher (the endpoint that judges in `judge.mode: openai`; its API key comes from the
        environment variable named by `teacher.api_key_env`)
"""

from __future__ import annotations

from contextlib import nullcontext

from middo.config import section
from middo.errors import ConfigError
from middo.model.config import ModelConfig
from middo.model.ranks import launched_world
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, JudgePaths, run_judge
from middo.stage import stage_main
from middo.teacher import TeacherConfig, make_teacher
from middo.teacher.limits import spending_checked


@stage_main(JudgePaths, __doc__, outputs=("output", "metrics", "plot"))
def main(paths: JudgePaths, params: dict) -> None:
    judge_cfg = section(JudgeConfig, params, "judge")
    if judge_cfg.mode == "openai" and launched_world() > 1:  # each process would send every request
        raise ConfigError(f"judge.mode is openai, which runs as one process, but {launched_world()} were started; "
                          "run `middo unroll` (it starts the judge stage as one process in this mode)")
    teacher_cfg = section(TeacherConfig, params, "teacher")
    with make_teacher(teacher_cfg) if judge_cfg.mode == "openai" else nullcontext() as teacher, \
            spending_checked(teacher):  # a spending cap that stopped a request fails the stage, naming the cap
        run_judge(paths, Judge(judge_cfg, paths.model, section(ModelConfig, params, "model"), teacher))


if __name__ == "__main__":
    main()
