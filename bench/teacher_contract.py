"""Parse rate of the refine teacher contract with SmolLM2-135M-Instruct as `local` teacher: markers vs JSON.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python bench/teacher_contract.py [--n 5] [--max-tokens 160]

The `n` shortest ShareGPT conversations of bench/out/train/sharegpt_64.jsonl (written by bench/train.py) each get
one `improve` attempt under `refine.reply_format: markers` and one under `json` (prompt phase, then the response
phase for those that parsed): at most 4n requests, greedy, on CPU. Prints per format and phase how many replies were
read, a few raw replies, and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from middo.refine.config import RefineConfig
from middo.refine.operations import Task, run_teacher
from middo.refine.prompts import load_refine_prompts
from middo.teacher import TeacherConfig, make_teacher

OUT = Path(__file__).parent / "out" / "train"


def load_tasks(n: int) -> list[Task]:
    """One `improve` task on each of the `n` shortest conversations."""
    rows = [json.loads(line) for line in (OUT / "sharegpt_64.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda row: sum(len(m["content"]) for m in row["messages"]))
    return [Task(row["id"], "improve", 0, row["messages"]) for row in rows[:n]]


def measure(teacher, tasks: list[Task], reply_format: str, max_tokens: int) -> dict:
    """Replies read per phase under one reply format, with two raw replies of each phase."""
    config = RefineConfig(max_failure_rate=1.0, prompt_max_tokens=max_tokens, response_max_tokens=max_tokens)
    prompts = load_refine_prompts(reply_format=reply_format)
    started = time.perf_counter()
    attempts = run_teacher(tasks, teacher, config, 0.0, prompts)
    sent_response = [a for a in attempts if a.new_prompt is not None]
    return {
        "prompt_phase": {"sent": len(attempts), "parsed": len(sent_response)},
        "response_phase": {"sent": len(sent_response), "parsed": sum(a.child is not None for a in attempts)},
        "seconds": round(time.perf_counter() - started, 1),
        "examples": [{p: a.replies.get(p, "")[:300] for p in ("prompt", "response")} for a in attempts[:2]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from train import smollm2

    model = smollm2(OUT)
    tasks = load_tasks(args.n)
    cfg = TeacherConfig(backend="local", model=str(model), cache_path="", local_batch_size=args.n)
    results = {}
    with make_teacher(cfg) as teacher:
        for reply_format in ("markers", "json"):
            results[reply_format] = measure(teacher, tasks, reply_format, args.max_tokens)
            print(reply_format, json.dumps(results[reply_format], indent=1), file=sys.stderr)
    print(json.dumps({"n": args.n, "max_tokens": args.max_tokens,
                      **{k: {p: v[p] for p in ("prompt_phase", "response_phase", "seconds")}
                         for k, v in results.items()}}))


if __name__ == "__main__":
    main()
