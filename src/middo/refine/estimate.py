"""The dry run of a refine stage: how many teacher requests it will send, their tokens and cost; nothing is sent.

Phase one (new prompts) is known exactly: its requests are built as the stage builds them, and those already in the
request cache are free; identical requests are sent once. Phase two (responses) is exact where phase one's reply is
cached; otherwise it counts one provisional request per task (as if every new prompt were usable and new), its prompt
the respond template around the parent's prompt: an upper bound, since an unusable new prompt sends nothing and a
repeated one is sent once. Completion tokens are each request's `max_tokens`, an upper bound.

The gate's judge (`judge.mode: openai`, `refine.gate` on) rates each improve child that passes the checks before the
signal check, with its parent (`middo.refine.gate`): six rating requests per distinct sample. `plan_gate` bounds
them from above by rating every improve child that can exist (all but those whose cached replies are unusable) and
its parent; a child whose replies are both cached is exact, the others stand in as their parent's messages, six
provisional requests each. The bound is what is sent when every improve child parses and passes the static and
near-duplicate checks. A parent's requests are also the judge stage's (same prompts, same sample): once that stage has
run with the request cache on they are cached, so free here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from middo.data.schema import read_samples
from middo.refine.config import RefineConfig
from middo.refine.context import child_messages
from middo.refine.contract import resolve_reply_format
from middo.refine.operations import Attempt, Task, plan_tasks, prompt_request, response_request
from middo.refine.parse import read_reply
from middo.refine.prompts import RefinePrompts, load_refine_prompts
from middo.signals.config import JudgeConfig
from middo.signals.judge_estimate import rating_plan
from middo.tables import read_table
from middo.teacher.cache import ReplyCache, cache_key
from middo.teacher.config import TeacherConfig
from middo.teacher.dryrun import Estimate, Planned, plan, tally
from middo.teacher.types import ChatReply, ChatRequest

__all__ = ["Child", "Estimate", "Planned", "estimate_gate", "estimate_refine", "improve_children", "plan_gate",
           "plan_refine", "task_plans"]


@dataclass(frozen=True)
class TaskPlan:
    """One task's requests: phase one's, and phase two's unless phase one's cached reply is unusable."""

    task: Task
    first: ChatRequest
    second: ChatRequest | None
    exact: bool
    """Whether `second` is the request the stage will send (phase one's reply is cached)."""
    new_prompt: str | None
    """The new prompt read from phase one's cached reply (None when not cached or unusable)."""


def task_plans(data: Path, flags: Path, knn: Path, config: RefineConfig,
               cfg: TeacherConfig) -> tuple[list[TaskPlan], RefinePrompts]:
    """Each task's requests as the stage builds them, phase two's from phase one's cached reply where there is one;
    and the templates they were built with."""
    samples = read_samples(data)
    tasks = plan_tasks(samples, read_table(flags, "select"), read_table(knn, "cluster"), config)
    reply_format = resolve_reply_format(config.reply_format, cfg.backend)  # as run_refine resolves it
    prompts = load_refine_prompts(config.prompts, config.show_response, config.answer_style, reply_format)
    first = [prompt_request(task, config, cfg.temperature, prompts) for task in tasks]
    replies = _cached(first, cfg)
    return [_task_plan(task, request, reply, config, cfg.temperature, prompts)
            for task, request, reply in zip(tasks, first, replies, strict=True)], prompts


def plan_refine(data: Path, flags: Path, knn: Path, config: RefineConfig, cfg: TeacherConfig) -> list[Planned]:
    """Both phases' requests of the refine stage over these inputs (phase one first, in task order), each looked up
    in the request cache."""
    plans, _ = task_plans(data, flags, knn, config, cfg)
    second = [p for p in plans if p.second is not None]
    return plan([p.first for p in plans] + [p.second for p in second], [True] * len(plans) + [p.exact for p in second],
                cfg)


def estimate_refine(data: Path, flags: Path, knn: Path, config: RefineConfig, cfg: TeacherConfig) -> Estimate:
    """The refine stage's teacher requests over these inputs, counted without sending any (the gate's aside)."""
    return tally(plan_refine(data, flags, knn, config, cfg), cfg)


@dataclass(frozen=True)
class Child:
    """An improve task's child as the gate's judge would see it: its messages, or None while not known."""

    task: Task
    messages: list[dict] | None


def improve_children(data: Path, flags: Path, knn: Path, config: RefineConfig, cfg: TeacherConfig) -> list[Child]:
    """Every improve task that can give the gate a child (not those whose cached reply is unusable), with the child's
    messages where both its replies are cached."""
    plans, prompts = task_plans(data, flags, knn, config, cfg)
    improve = [p for p in plans if p.task.op == "improve" and (p.second is not None or not p.exact)]
    responses = iter(_cached([p.second for p in improve if p.exact], cfg))
    children = []
    for p in improve:
        reply = next(responses) if p.exact else None
        if reply is None:
            children.append(Child(p.task, None))
        elif (response := read_reply(reply.text or "", "response", prompts.reply_format).text) is not None:
            children.append(Child(p.task, child_messages(p.task.messages, p.task.op, p.new_prompt, response)))
    return children


def plan_gate(data: Path, flags: Path, knn: Path, config: RefineConfig, judge_cfg: JudgeConfig,
              cfg: TeacherConfig) -> list[Planned]:
    """The gate's rating requests at most (see the module docstring): each possible improve child and its parent,
    a child not known yet standing in as its parent's messages; none unless the gate is on and judges through the
    teacher."""
    if not config.gate or judge_cfg.mode != "openai":
        return []
    children = improve_children(data, flags, knn, config, cfg)
    known = [{"messages": c.messages} for c in children if c.messages is not None]
    parents = {c.task.parent: {"messages": c.task.messages} for c in children}
    stand_ins = [{"messages": c.task.messages} for c in children if c.messages is None]
    exact = rating_plan([*known, *parents.values()], judge_cfg, cfg)
    provisional = [Planned(q.request, q.key, False, False) for q in rating_plan(stand_ins, judge_cfg, cfg)]
    return exact + provisional


def estimate_gate(data: Path, flags: Path, knn: Path, config: RefineConfig, judge_cfg: JudgeConfig,
                  cfg: TeacherConfig) -> Estimate | None:
    """An upper bound of the gate's judge requests; None unless the gate is on and judges through the teacher."""
    if not config.gate or judge_cfg.mode != "openai":
        return None
    return tally(plan_gate(data, flags, knn, config, judge_cfg, cfg), cfg)


def _cached(requests: list[ChatRequest], cfg: TeacherConfig) -> list[ChatReply | None]:
    """The cached reply to each request, or None."""
    cache = ReplyCache(cfg.cache_path or None)
    try:
        return cache.get_many([cache_key(cfg.base_url, cfg.model, r) for r in requests])
    finally:
        cache.close()


def _task_plan(task: Task, first: ChatRequest, reply: ChatReply | None, config: RefineConfig, temperature: float,
               prompts: RefinePrompts) -> TaskPlan:
    """`task`'s phase-two request: exact when its phase-one reply is cached (None if that reply is unusable), else
    built around the parent's prompt (its length stands in for the new prompt's)."""
    attempt = Attempt(task)
    if reply is None:
        attempt.new_prompt = _user_prompt(task.messages)
        return TaskPlan(task, first, response_request(attempt, config, temperature, prompts), False, None)
    attempt.new_prompt = read_reply(reply.text or "", "prompt", prompts.reply_format).text
    if attempt.new_prompt is None:
        return TaskPlan(task, first, None, True, None)
    return TaskPlan(task, first, response_request(attempt, config, temperature, prompts), True, attempt.new_prompt)


def _user_prompt(messages: list[dict]) -> str:
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    return str(users[-1]) if users else ""
