"""The dry run of the judge stage in `judge.mode: openai`: its rating requests over D(r-1), built as the stage
builds them (`rating_requests`) and looked up in the request cache, so the count is exact; nothing is sent."""

from __future__ import annotations

from pathlib import Path

from middo.data.schema import read_samples
from middo.signals.config import JudgeConfig
from middo.signals.judge_openai import rating_requests
from middo.signals.judge_prompts import load_judge_prompts
from middo.teacher.config import TeacherConfig
from middo.teacher.dryrun import Estimate, Planned, plan, tally


def rating_plan(samples: list[dict], judge_cfg: JudgeConfig, cfg: TeacherConfig) -> list[Planned]:
    """The openai judge's requests for `samples` (dicts with `messages`), each looked up in the request cache."""
    prompts = load_judge_prompts(judge_cfg.prompts, judge_cfg.prompt_sees_response)  # as Judge.rating_prompts
    requests = rating_requests(samples, judge_cfg, prompts)
    return plan(requests, [True] * len(requests), cfg)


def estimate_judge(data: Path, judge_cfg: JudgeConfig, cfg: TeacherConfig) -> Estimate | None:
    """The judge stage's teacher requests over the dataset at `data`; None unless `judge.mode` is `openai` (the
    local modes ask the teacher nothing)."""
    if judge_cfg.mode != "openai":
        return None
    samples = read_samples(data).select("messages").to_dicts()
    return tally(rating_plan(samples, judge_cfg, cfg), cfg)
