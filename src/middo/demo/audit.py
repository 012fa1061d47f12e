"""Ground-truth audit of a demo dataset: which samples are still defective, by recomputing each task from its text.

A sample is `unreadable` (no task family reads a task out of its prompt), `garbled` (a part is missing, or no clean
phrasing of the task appears in the prompt: typos), `over_hard`, `wrong_answer` (the response is not the task's
answer), or clean (None). It works on any sample, a teacher's child as well as a seed sample, so it tells how many
defects a round actually removed. Like `meta.planted` it is ground truth for reports and benches, never a signal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from middo.data.schema import prompt_messages, response_text
from middo.demo.tasks import clean_phrasing, family, recognise, solve

AUDIT_KINDS = ("wrong_answer", "garbled", "over_hard", "unreadable")


def task_defect(prompt: str, response: str) -> str | None:
    """The defect of one prompt/response pair (an `AUDIT_KINDS` value), or None when it is a clean, correct task."""
    item = recognise(prompt)
    if item is None:
        return "unreadable"
    if not item.complete or not clean_phrasing(item, prompt):
        return "garbled"
    if family(item.family).is_hard(item):
        return "over_hard"
    return None if answers_match(response, solve(item)) else "wrong_answer"


def answers_match(response: str, answer: str) -> bool:
    """Whether `response` states `answer` (case, surrounding space and a final period ignored)."""
    return response.strip().rstrip(".").casefold() == answer.strip().casefold()


def sample_defect(messages: list[dict]) -> str | None:
    """`task_defect` of a sample's prompt (its last user turn) and response."""
    user_turns = [m["content"] for m in prompt_messages(messages) if m["role"] == "user"]
    return task_defect(user_turns[-1] if user_turns else "", response_text(messages))


def audit_counts(samples: Iterable[list[dict]]) -> dict[str, int]:
    """Samples per defect kind (`AUDIT_KINDS`, then `clean`), plus `total` and `defective`."""
    found = Counter(sample_defect(messages) or "clean" for messages in samples)
    counts = {kind: found.get(kind, 0) for kind in (*AUDIT_KINDS, "clean")}
    counts["total"] = sum(found.values())
    counts["defective"] = counts["total"] - counts["clean"]
    return counts
