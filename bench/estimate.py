"""The dry run (`middo estimate`) against a finished round of a demo project: what it predicts before the round, and
once phase one's replies are cached, against what the round really sent (its refine.json, judge.json and refine log).

    .venv/bin/python bench/estimate.py PROJECT [--round 1]

Nothing is sent and PROJECT is only read: the request cache is a temporary file. "Warm" puts phase one's replies,
as the round's refine log recorded them, into that cache (what `middo teacher load-batch` does with a batch's
output), so phase two is known exactly. The simulated teacher's server counts a request's prompt tokens as its
whitespace-separated words; the same rule over the planned requests, op by op, against refine.json's tokens shows
whether the planned requests are the ones the round sent (they differ when the project was made with other prompt
templates). The judge stage (`judge.mode: openai`) is planned over D(r-1) against judge.json's requests; the gate's
judge requests, an upper bound, cold, then with both phases' logged replies cached (so every child is known),
against the judge requests in refine.json's usage. Figures go to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import polars as pl

from middo.cli.teacher import refine_inputs
from middo.config import load_params, section
from middo.data.schema import read_samples, sample_id
from middo.refine.config import RefineConfig
from middo.refine.estimate import estimate_gate, estimate_refine, improve_children, plan_refine, task_plans
from middo.refine.operations import plan_tasks
from middo.signals.config import JudgeConfig
from middo.signals.judge_estimate import estimate_judge, rating_plan
from middo.tables import read_table
from middo.teacher.cache import ReplyCache, cache_key
from middo.teacher.config import TeacherConfig
from middo.teacher.limits import estimate_prompt_tokens
from middo.teacher.types import ChatReply


def rated_requests(project: Path, round_number: int, inputs, refine_cfg: RefineConfig, judge_cfg: JudgeConfig,
                   teacher_cfg: TeacherConfig) -> tuple[int, int]:
    """(distinct requests, their prompt words) of the judge over the samples the gate really rated (the refine log's
    children with a `quality` score, and their parents), planned from the replayed replies."""
    log = pl.read_parquet(project / "data" / f"r{round_number}" / "refine_log.parquet")
    rated = {row["child"] for row in log.iter_rows(named=True) if "quality" in json.loads(row["scores"] or "{}")}
    children = [c for c in improve_children(*inputs, refine_cfg, teacher_cfg)
                if c.messages is not None and sample_id(c.messages) in rated]
    samples = [{"messages": c.messages} for c in children] + [{"messages": c.task.messages} for c in children]
    planned = rating_plan(samples, judge_cfg, teacher_cfg)
    return len({p.key for p in planned}), words(planned)[0]["judge"]


def words(planned) -> tuple[Counter[str], int]:
    """Prompt words per op of the distinct requests in `planned` (the simulated server's prompt tokens), and their
    prompt tokens by the estimate's rule."""
    distinct: dict[str, object] = {}
    for p in planned:
        distinct.setdefault(p.key, p.request)  # a repeat is sent once, as its first occurrence
    counts: Counter[str] = Counter()
    for request in distinct.values():
        counts[request.op] += sum(len(str(m.get("content") or "").split()) for m in request.messages)
    return counts, sum(estimate_prompt_tokens(r) for r in distinct.values())


def replay_phase_one(project: Path, round_number: int, inputs, refine_cfg: RefineConfig,
                     teacher_cfg: TeacherConfig) -> int:
    """Cache phase one's replies as the round's refine log recorded them; the number cached."""
    data, flags, knn = inputs
    tasks = plan_tasks(read_samples(data), read_table(flags, "select"), read_table(knn, "cluster"), refine_cfg)
    log = pl.read_parquet(project / "data" / f"r{round_number}" / "refine_log.parquet")
    logged = {(row["op"], row["parent"], row["variant"]): row["prompt_reply"] for row in log.iter_rows(named=True)}
    first = plan_refine(data, flags, knn, refine_cfg, teacher_cfg)[:len(tasks)]  # phase one, in task order
    cache = ReplyCache(teacher_cfg.cache_path)
    try:
        cache.put_many([(p.key, ChatReply(logged[(t.op, t.parent, t.variant)], None, 0, 0, False))
                        for p, t in zip(first, tasks, strict=True) if logged[(t.op, t.parent, t.variant)]])
    finally:
        cache.close()
    return len(tasks)


def replay_phase_two(project: Path, round_number: int, inputs, refine_cfg: RefineConfig,
                     teacher_cfg: TeacherConfig) -> int:
    """Cache phase two's replies as the refine log recorded them (phase one's already cached); the number cached."""
    plans, _ = task_plans(*inputs, refine_cfg, teacher_cfg)
    log = pl.read_parquet(project / "data" / f"r{round_number}" / "refine_log.parquet")
    logged = {(row["op"], row["parent"], row["variant"]): row["response_reply"] for row in log.iter_rows(named=True)}
    replies = [(cache_key(teacher_cfg.base_url, teacher_cfg.model, p.second),
                logged[(p.task.op, p.task.parent, p.task.variant)]) for p in plans if p.second is not None and p.exact]
    cache = ReplyCache(teacher_cfg.cache_path)
    try:
        cache.put_many([(key, ChatReply(text, None, 0, 0, False)) for key, text in replies if text])
    finally:
        cache.close()
    return sum(bool(text) for _, text in replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--round", type=int, default=1)
    args = parser.parse_args()
    params = load_params(args.project / "params.yaml")
    refine_cfg, judge_cfg = section(RefineConfig, params, "refine"), section(JudgeConfig, params, "judge")
    round_number, *inputs = refine_inputs(args.round, args.project)
    out = args.project / "data" / f"r{round_number}"
    usage = json.loads((out / "refine.json").read_text())["teacher_usage"]
    judge_usage = json.loads((out / "judge.json").read_text()).get("teacher_usage", {})
    judge_sent, judge_prompt = judge_usage.get("requests"), judge_usage.get("prompt_tokens", 0)
    real = {op: counts["prompt_tokens"] for op, counts in usage["tokens"].items()}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(section(TeacherConfig, params, "teacher"), cache_path=str(Path(tmp) / "c.sqlite"))
        judge = estimate_judge(inputs[0], judge_cfg, cfg)
        cold = estimate_refine(*inputs, refine_cfg, cfg)
        gate_cold = estimate_gate(*inputs, refine_cfg, judge_cfg, cfg)
        phase_one, one_tokens = words(plan_refine(*inputs, refine_cfg, cfg)[:replay_phase_one(
            args.project, round_number, inputs, refine_cfg, cfg)])
        warm = estimate_refine(*inputs, refine_cfg, cfg)
        phase_two, two_tokens = words([p for p in plan_refine(*inputs, refine_cfg, cfg) if not p.cached])
        replay_phase_two(args.project, round_number, inputs, refine_cfg, cfg)
        gate_warm = estimate_gate(*inputs, refine_cfg, judge_cfg, cfg)
        rated, rated_words = rated_requests(args.project, round_number, inputs, refine_cfg, judge_cfg, cfg)
        judge_words, _ = words(rating_plan(read_samples(inputs[0]).select("messages").to_dicts(), judge_cfg, cfg))
    planned = phase_one + phase_two
    refine_requests = cold.requests - cold.provisional + warm.requests
    gate_sent = usage["requests"] - refine_requests
    print(f"round {round_number}: cold {cold.requests} requests ({cold.provisional} provisional), "
          f"{cold.prompt_tokens} prompt tokens; warm {warm.requests} requests + {warm.cached} cached, "
          f"{warm.prompt_tokens} prompt tokens; real {usage['requests']} requests with the gate's judge",
          file=sys.stderr)
    print(f"  judge stage: planned {judge and judge.requests}, judge.json {judge_sent}; the gate's judge: at most "
          f"{gate_cold and gate_cold.requests} cold, {gate_warm and gate_warm.requests} with both phases cached, "
          f"sent {gate_sent}; over the samples it rated, planned {rated} requests", file=sys.stderr)
    print(f"  prompt words judge stage           planned {judge_words['judge']:8d}  judge.json  {judge_prompt:8d}",
          file=sys.stderr)
    print(f"  prompt words gate's judge (rated)  planned {rated_words:8d}  refine.json {real.get('judge', 0):8d}",
          file=sys.stderr)
    for op in sorted(planned | Counter({op: 0 for op in real if op != "judge"})):
        print(f"  prompt words {op:20s} planned {planned[op]:8d}  refine.json {real.get(op, 0):8d}", file=sys.stderr)
    print(json.dumps({"round": round_number, "cold": cold.as_dict(), "warm": warm.as_dict(),
                      "judge": judge and judge.as_dict(), "judge_real_requests": judge_sent,
                      "gate_rated_planned_requests": rated,
                      "gate_cold": gate_cold and gate_cold.as_dict(), "gate_warm": gate_warm and gate_warm.as_dict(),
                      "refine_requests": refine_requests, "judge_requests": gate_sent,
                      "real_requests": usage["requests"], "real_prompt_tokens": usage["prompt_tokens"],
                      "real_completion_tokens": usage["completion_tokens"],
                      "planned_words": sum(planned.values()), "planned_prompt_tokens": one_tokens + two_tokens,
                      "real_refine_prompt_tokens": sum(v for op, v in real.items() if op != "judge"),
                      "real_judge_prompt_tokens": real.get("judge", 0)}))


if __name__ == "__main__":
    main()
