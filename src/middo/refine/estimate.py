"""The dry run of a refine stage: how many teacher requests it will send, their tokens and cost; nothing is sent.

Phase one (new prompts) is known exactly: its requests are built as the stage builds them, and those already in the
request cache are free. Phase two (responses) is exact where phase one's reply is cached; otherwise it counts one
request per task (as if every new prompt were usable), its prompt the respond template around the parent's prompt.
Completion tokens are each request's `max_tokens`, an upper bound. The gate's judge requests (`judge.mode: openai`)
are not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from middo.data.schema import read_samples
from middo.refine.config import RefineConfig
from middo.refine.contract import resolve_reply_format
from middo.refine.operations import Attempt, Task, plan_tasks, prompt_request, response_request
from middo.refine.parse import read_reply
from middo.refine.prompts import RefinePrompts, load_refine_prompts
from middo.tables import read_table
from middo.teacher.cache import ReplyCache, cache_key
from middo.teacher.config import TeacherConfig
from middo.teacher.limits import TOKEN_ESTIMATE, cost, estimate_prompt_tokens
from middo.teacher.types import ChatReply, ChatRequest


@dataclass(frozen=True)
class Estimate:
    """What a refine stage will ask of the teacher."""

    requests: int
    """Requests the stage will send (cache hits excluded)."""
    cached: int
    """Requests already answered in the request cache (free)."""
    prompt_tokens: int
    completion_tokens: int
    """Upper bound: the sum of the requests' max_tokens."""
    cost: float | None
    """At `teacher.prices`; None without prices."""
    token_count: str = TOKEN_ESTIMATE

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Planned:
    """One request the stage would make: `exact` unless it stands in for a phase-two request not yet writable."""

    request: ChatRequest
    key: str
    exact: bool
    cached: bool


def plan_refine(data: Path, flags: Path, knn: Path, config: RefineConfig, cfg: TeacherConfig) -> list[Planned]:
    """Both phases' requests of the refine stage over these inputs, each looked up in the request cache."""
    samples = read_samples(data)
    tasks = plan_tasks(samples, read_table(flags, "select"), read_table(knn, "cluster"), config)
    reply_format = resolve_reply_format(config.reply_format, cfg.backend)  # as run_refine resolves it
    prompts = load_refine_prompts(config.prompts, config.show_response, config.answer_style, reply_format)
    first = [prompt_request(task, config, cfg.temperature, prompts) for task in tasks]
    cache = ReplyCache(cfg.cache_path or None)
    try:
        replies = cache.get_many([cache_key(cfg.base_url, cfg.model, r) for r in first])
        second = [_response(task, reply, config, cfg.temperature, prompts)
                  for task, reply in zip(tasks, replies, strict=True)]
        requests = first + [r for r, _ in second if r is not None]
        exact = [True] * len(first) + [known for r, known in second if r is not None]
        keys = [cache_key(cfg.base_url, cfg.model, r) for r in requests]
        hits = cache.get_many(keys)
    finally:
        cache.close()
    return [Planned(r, k, e, h is not None) for r, k, e, h in zip(requests, keys, exact, hits, strict=True)]


def estimate_refine(data: Path, flags: Path, knn: Path, config: RefineConfig, cfg: TeacherConfig) -> Estimate:
    """The refine stage's teacher requests over these inputs, counted without sending any."""
    planned = plan_refine(data, flags, knn, config, cfg)
    sent = {p.key: p.request for p in planned if not p.cached}  # a repeat is sent once (its reply is shared)
    prompt = sum(estimate_prompt_tokens(r) for r in sent.values())
    completion = sum(r.max_tokens for r in sent.values())
    money = cost(cfg, prompt, completion) if cfg.prices else None
    return Estimate(len(sent), sum(p.cached for p in planned), prompt, completion, money)


def _response(task: Task, reply: ChatReply | None, config: RefineConfig, temperature: float,
              prompts: RefinePrompts) -> tuple[ChatRequest | None, bool]:
    """The phase-two request of `task` and whether it is exact: exact when its phase-one reply is cached (None if that
    reply is unusable), else built around the parent's prompt (its length stands in for the new prompt's)."""
    attempt = Attempt(task)
    if reply is None:
        attempt.new_prompt = _user_prompt(task.messages)
        return response_request(attempt, config, temperature, prompts), False
    attempt.new_prompt = read_reply(reply.text or "", "prompt", prompts.reply_format).text
    if attempt.new_prompt is None:
        return None, True
    return response_request(attempt, config, temperature, prompts), True


def _user_prompt(messages: list[dict]) -> str:
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    return str(users[-1]) if users else ""
