"""The SIMULATED teacher: rule-based answers to the refine prompts, behind a real loopback OpenAI-compatible server.

It reads the request contract of `middo.refine.contract`, recognises the demo task inside the text and answers as a
strong teacher would (correct answers, the one-step form of an over-hard item, a clean rewrite of a garbled one, a
new item of a sparse item's family); it also answers the judge's rating prompts (`middo.demo.sim_judge`). A
fraction `error_rate` of requests, chosen by a hash of the request content (so re-runs behave the same), goes
wrong on purpose: a wrong answer, a garbled task or a careless rating, a reply without the `<final>` markers (a
rating in prose), or a transient server error that a retry gets past. It is not a language model; everything it
returns is labelled simulated.

```python
with running_sim_teacher(error_rate=0.1) as base_url:
    client = OpenAI(base_url=base_url, api_key="EMPTY")
```
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from middo.demo.defects import noisy_words
from middo.demo.sim_judge import is_rating_request, rate
from middo.demo.tasks import Item, family, recognise, render, solve
from middo.log import get_logger
from middo.refine import contract as P

log = get_logger(__name__)

SIM_MODEL = "sim-teacher (simulated)"
"""The model name the simulated teacher answers under."""
ERROR_MODES = ("wrong", "unmarked", "server_error")
FRAMES = ("{q}", "{q} Reply with just the answer.", "Short task. {q}", "Try this one. {q}",
          "{q} Give only the result.", "Here is one for you. {q}", "{q} One word or number, please.")
"""The teacher's own wordings around a task, as a real teacher varies its phrasing (so its tasks are rarely verbatim
copies of seed prompts); every family's parser still reads the task inside each of them."""


@dataclass(frozen=True)
class SimOutcome:
    """The simulated reply to one request: its text and how it was made (`ok`, or one of `ERROR_MODES`)."""

    text: str
    mode: str
    op: str | None
    recognised: bool


def between(text: str, open_tag: str, close_tag: str) -> str | None:
    """The text between the first `open_tag` and the next `close_tag` (stripped), or None."""
    match = re.search(re.escape(open_tag) + r"(.*?)" + re.escape(close_tag), text, re.DOTALL)
    return match.group(1).strip() if match else None


def simulate(request: dict[str, Any], error_rate: float, seed: int = 0) -> SimOutcome:
    """What the simulated teacher answers to a chat-completions request body (pure and deterministic)."""
    messages = request.get("messages") or []
    system = next((m.get("content") or "" for m in messages if m.get("role") == "system"), "")
    user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
    op = P.operation_of(system)
    digest = hashlib.sha256(f"{seed}\x00{op}\x00{user}".encode()).hexdigest()
    rng = random.Random(int(digest[:16], 16))
    mode = rng.choice(ERROR_MODES) if rng.random() < error_rate else "ok"
    if op is None and is_rating_request(user):
        return _rating_outcome(user, mode, rng)
    content = _content(op, user, rng, wrong=mode == "wrong")
    if content is None:
        return SimOutcome("I could not tell what task this is, so I cannot help with it.", mode, op, False)
    if mode == "unmarked":
        return SimOutcome(f"Sure. {content}", mode, op, True)
    what = "answer" if op == P.RESPOND else "simplified task" if op == "simplify" else "task"
    return SimOutcome(f"Here is the {what}.\n{P.FINAL_OPEN}{content}{P.FINAL_CLOSE}",
                      mode, op, True)


def _rating_outcome(user: str, mode: str, rng: random.Random) -> SimOutcome:
    """A judge reply: the rating alone; a careless one on `wrong`, prose without a number on `unmarked`."""
    if mode == "unmarked":
        return SimOutcome("The example looks reasonable to me overall.", mode, "judge", True)
    rating = rng.randint(0, 10) if mode == "wrong" else rate(user)
    return SimOutcome(str(rating), mode, "judge", True)


def _content(op: str | None, user: str, rng: random.Random, wrong: bool) -> str | None:
    if op == P.RESPOND:
        item = recognise(between(user, P.PROMPT_OPEN, P.PROMPT_CLOSE) or "")
        if item is None or not item.complete:
            return None
        return family(item.family).wrong(item, rng) if wrong else solve(item)
    if op not in P.PROMPT_OPS:
        return None
    sample = between(user, P.SAMPLE_OPEN, P.SAMPLE_CLOSE) or ""
    original = sample.split(P.RESPONSE_OPEN)[0].strip()
    item = recognise(original)
    if item is None:
        return None
    hints = re.findall(re.escape(P.HINT_OPEN) + r"(.*?)" + re.escape(P.HINT_CLOSE), user, re.DOTALL)
    new = _new_item(op, item, rng, avoid={item, *filter(None, map(recognise, hints))})
    index = rng.randrange(len(family(new.family).templates(new)))
    if render(new, index) == original:  # a rewrite, not a copy: take the next phrasing
        index += 1
    frame = rng.choice(FRAMES)
    if wrong:  # a sloppy task: typos in every longer word
        return frame.format(q=render(new, index, edit_literal=lambda words: noisy_words(words, rng, rate=1.0)))
    return frame.format(q=render(new, index))


def _new_item(op: str, item: Item, rng: random.Random, avoid: set[Item]) -> Item:
    """The task the teacher writes for `op`, from the item it recognised in the sample."""
    fam = family(item.family)
    if not item.complete:
        item = fam.fill(item, rng)  # an underspecified prompt: complete it with plausible values
        return item if op == "improve" else fam.simplify(item) if fam.is_hard(item) else item
    if op == "simplify":
        return fam.simplify(item) if fam.is_hard(item) else fam.draw(rng, hard=False)
    if op == "improve":
        return item
    for _ in range(50):  # synthesize: a new item of the same family, none of the sample and its neighbours
        new = fam.draw(rng, hard=False)
        if new not in avoid:
            break
    return new


class SimHandler:
    """`ChatServer` handler: `simulate` plus the one stateful part, a server error only on a request's first try."""

    def __init__(self, error_rate: float, seed: int = 0) -> None:
        self.error_rate = error_rate
        self.seed = seed
        self._failed_once: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]):
        from middo.teacher.server import Reply

        outcome = simulate(request, self.error_rate, self.seed)
        if outcome.mode == "server_error":
            key = hashlib.sha256(repr(request.get("messages")).encode()).hexdigest()
            with self._lock:
                first = key not in self._failed_once
                self._failed_once.add(key)
            if first:
                return Reply(content="simulated transient server error", status=500)
        return Reply(content=outcome.text)


def start_sim_server(error_rate: float, seed: int = 0):
    """A started `ChatServer` answering as the simulated teacher (call `.stop()` when done)."""
    from middo.teacher.server import ChatServer

    server = ChatServer(SimHandler(error_rate, seed), model=SIM_MODEL).start()
    log.warning("SIMULATED teacher (rules, not a language model) serving at %s as %r, error rate %.2f",
                server.base_url, SIM_MODEL, error_rate)
    return server


@contextmanager
def running_sim_teacher(error_rate: float, seed: int = 0) -> Iterator[str]:
    """Serve the simulated teacher on 127.0.0.1 while the block runs; yields the OpenAI `base_url`."""
    server = start_sim_server(error_rate, seed)
    try:
        yield server.base_url
    finally:
        server.stop()
