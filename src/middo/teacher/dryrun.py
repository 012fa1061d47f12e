"""Counting a stage's teacher requests without sending them: the planned requests, looked up in the request cache,
tallied as `Estimate`s (requests, tokens, cost). The stages' own planners are `middo.refine.estimate` and
`middo.signals.judge_estimate`; `middo estimate` prints them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from middo.teacher.cache import ReplyCache, cache_key
from middo.teacher.config import TeacherConfig
from middo.teacher.limits import TOKEN_ESTIMATE, cost, estimate_prompt_tokens
from middo.teacher.types import ChatRequest


@dataclass(frozen=True)
class Estimate:
    """What a stage will ask of the teacher."""

    requests: int
    """Requests the stage will send (cache hits excluded)."""
    provisional: int
    """Of `requests`, those counted one each before the request itself can be written (an upper bound)."""
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
    """One request the stage would make: `exact` unless it stands in for a request not yet writable."""

    request: ChatRequest
    key: str
    exact: bool
    cached: bool


def plan(requests: list[ChatRequest], exact: list[bool], cfg: TeacherConfig) -> list[Planned]:
    """`requests` keyed as the teacher keys them and looked up in its request cache (teacher.cache_path)."""
    keys = [cache_key(cfg.base_url, cfg.model, r) for r in requests]
    cache = ReplyCache(cfg.cache_path or None)
    try:
        hits = cache.get_many(keys)
    finally:
        cache.close()
    # a stand-in is not the request the stage will send, so a cached reply to it says nothing
    return [Planned(r, k, e, e and h is not None) for r, k, e, h in zip(requests, keys, exact, hits, strict=True)]


def tally(planned: list[Planned], cfg: TeacherConfig) -> Estimate:
    """What `planned` costs: exact requests sent once per distinct key unless cached (a repeat in one call shares
    its reply), stand-ins one each (the requests they stand for differ)."""
    exact = {p.key: p.request for p in planned if p.exact and not p.cached}
    provisional = [p.request for p in planned if not p.exact]
    sent = [*exact.values(), *provisional]
    prompt = sum(estimate_prompt_tokens(r) for r in sent)
    completion = sum(r.max_tokens for r in sent)
    money = cost(cfg, prompt, completion) if cfg.prices else None
    return Estimate(len(sent), len(provisional), sum(p.cached for p in planned), prompt, completion, money)


def total(estimates: list[Estimate]) -> Estimate:
    """The sum of several stages' estimates (cost None when any is None)."""
    costs = [e.cost for e in estimates]
    return Estimate(sum(e.requests for e in estimates), sum(e.provisional for e in estimates),
                    sum(e.cached for e in estimates), sum(e.prompt_tokens for e in estimates),
                    sum(e.completion_tokens for e in estimates), None if None in costs else sum(costs))
