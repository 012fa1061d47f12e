"""The SIMULATED judge: rule-based 0-10 ratings of a demo sample, as a strong LLM judge would give them.

It answers the packaged rating prompts of `middo.signals.judge_prompts` (the `openai` judge mode pointed at the
simulated teacher), read through their fixed sample markers and the packaged questions. It reads the task out of
the prompt the way the simulated teacher does and rates what a careful reader sees: typos (no clean phrasing of the
task appears in the prompt) lower the prompt's clarity, a missing part lowers its completeness and makes any answer
unverifiable, and an answer that is not the task's correct answer gets a low factuality. It never reads `meta`; how
a prompt was made is invisible to it.
"""

from __future__ import annotations

import re

from middo.demo.audit import answers_match
from middo.demo.tasks import clean_phrasing, recognise, solve
from middo.signals.judge_prompts import (
    ASPECTS,
    PROMPT_CLOSE,
    PROMPT_OPEN,
    RESPONSE_CLOSE,
    RESPONSE_OPEN,
    load_judge_prompts,
)

GOOD = 9
"""The rating of an aspect with nothing wrong (a judge keeps 10 for the exceptional)."""
_SAMPLE = re.compile(
    rf"{re.escape(PROMPT_OPEN)}\n(.*?)\n{re.escape(PROMPT_CLOSE)}\n\n"
    rf"(?:{re.escape(RESPONSE_OPEN)}\n(.*)\n{re.escape(RESPONSE_CLOSE)}\n\n)?",
    re.DOTALL,
)
"""The sample block of a rating prompt; the response part is absent from the prompt questions (seen alone)."""


def is_rating_request(user: str) -> bool:
    """True when `user` is one of the judge's six rating prompts."""
    starts = user.startswith(load_judge_prompts().instructions)
    return starts and _aspect(user) is not None and _SAMPLE.search(user) is not None


def rate(user: str) -> int | None:
    """The simulated judge's rating of the aspect `user` asks about, or None when it is not a rating prompt."""
    aspect, match = _aspect(user), _SAMPLE.search(user)
    if aspect is None or match is None:
        return None
    return sample_ratings(match.group(1), match.group(2) or "")[aspect]  # prompt ratings never read the response


def sample_ratings(prompt: str, response: str) -> dict[str, int]:
    """All six ratings of one sample, by aspect name."""
    item = recognise(prompt)
    if item is None:  # not a task the judge can read: an unclear, incomplete prompt whose answer it cannot check
        return dict(zip(ASPECTS, (5, 2, 2, 4, GOOD, 4), strict=True))
    if not item.complete:  # a part is missing: no answer can be right
        return dict(zip(ASPECTS, (GOOD, 6, 1, 3, GOOD, 4), strict=True))
    clarity = GOOD if clean_phrasing(item, prompt) else 3
    correct = answers_match(response, solve(item))
    return dict(zip(ASPECTS, (GOOD, clarity, GOOD, GOOD if correct else 1, GOOD, GOOD), strict=True))


def _aspect(user: str) -> str | None:
    question = user.rstrip().rsplit("\n", 1)[-1]
    return next((aspect for aspect, text in load_judge_prompts().questions.items() if question == text), None)
