"""refine.json: per operation requested, accepted, rejected by which check, teacher failures; tokens; D(r) counts;
how the earlier turns of multi-turn samples were cut to fit `refine.context_max_tokens`."""

from __future__ import annotations

from collections import Counter

from middo.data.schema import REFINE_OPS
from middo.refine.config import RefineConfig
from middo.refine.context import CONTEXT_TOKENS, fit_context
from middo.refine.gate import CHECKS
from middo.refine.operations import Attempt


def refine_metrics(attempts: list[Attempt], counts: dict[str, int], usage: dict, config: RefineConfig) -> dict:
    """Counts per operation and in total, the teacher's token usage, and the sizes of D(r-1) and D(r)."""
    per_op = {}
    for op in REFINE_OPS:
        mine = [a for a in attempts if a.task.op == op]
        outcomes = Counter(a.outcome for a in mine)
        rejected = Counter(a.check for a in mine if a.outcome == "rejected")
        failed = Counter(a.phase for a in mine if a.outcome == "teacher_error")
        per_op[op] = {
            "requested": len(mine),
            "parents": len({a.task.parent for a in mine}),
            "accepted": outcomes["accepted"],
            "rejected": outcomes["rejected"],
            "rejected_by": {check: rejected[check] for check in CHECKS},
            "teacher_failures": outcomes["teacher_error"],
            "teacher_failures_by_phase": {"prompt": failed["prompt"], "response": failed["response"]},
            "unparsed": outcomes["unparsed"],
        }
    total = {key: sum(per_op[op][key] for op in REFINE_OPS)
             for key in ("requested", "accepted", "rejected", "teacher_failures", "unparsed")}
    return {
        "gate": config.gate,
        "on_teacher_failure": config.on_teacher_failure,
        "max_failure_rate": config.max_failure_rate,
        "ops": per_op,
        "total": total,
        "dataset": {**counts, "before": counts["kept"] + counts["replaced"],
                    "after": counts["kept"] + counts["replaced"] + counts["added"]},
        "context": context_metrics(attempts, config),
        "teacher_usage": usage,
    }


def context_metrics(attempts: list[Attempt], config: RefineConfig) -> dict:
    """Parents worked on that have earlier turns, those whose context was cut, and the turns left out (each parent
    counted once)."""
    parents = {a.task.parent: a.task.messages for a in attempts}
    contexts = [fit_context(messages, config.context_max_tokens) for messages in parents.values()]
    return {
        "max_tokens": config.context_max_tokens,
        "token_count": CONTEXT_TOKENS,
        "samples": sum(c.present for c in contexts),
        "cut": sum(c.dropped > 0 for c in contexts),
        "turns_dropped": sum(c.dropped for c in contexts),
        "turns_shown": sum(len(c.shown) for c in contexts),
    }
