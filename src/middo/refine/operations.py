"""Plan the teacher operations of a round from its flags, and run them in two batched phases.

hard → simplify; low quality and not hard (or hard too, with `refine.hard_and_low_quality: both`) → improve;
sparse → synthesize (`synth_per_sample` each). Phase one asks the teacher for every new prompt in one
`Teacher.complete` call, phase two for every response in one more call, so the teacher's concurrency is used. A
failed call or an unparseable reply ends that attempt (the parent stays). A multi-turn sample is worked on in its
final exchange, its earlier turns shown as context (`middo.refine.context`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from middo.errors import InputError, MiddoError
from middo.refine.config import RefineConfig
from middo.refine.context import CONTINUING_OPS, child_messages, fit_context
from middo.refine.contract import JSON_FORMAT
from middo.refine.history import earlier_notes
from middo.refine.parse import read_reply
from middo.refine.prompts import RefinePrompts, cut, prompt_text
from middo.tables import join_by_id
from middo.teacher import ChatReply, ChatRequest, Teacher

ERROR_CHARS = 300
FAILED_PREFIX = "teacher call failed: "


@dataclass(frozen=True)
class Task:
    """One operation on one parent (`variant` numbers the synthesize requests of a parent)."""

    parent: str
    op: str
    variant: int
    messages: list[dict]
    hints: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()
    """Notes on this op's attempts on the parent in an earlier round (`middo.refine.history`)."""

    @property
    def key(self) -> str:
        """Unique name of the attempt: `op:parent:variant`."""
        return f"{self.op}:{self.parent}:{self.variant}"


@dataclass
class Attempt:
    """What became of a task: the child's messages, the outcome, and why."""

    task: Task
    outcome: str = "pending"
    """`accepted`, `rejected` (by the gate), `teacher_error` (the call failed), `unparsed` (no usable marker)."""
    phase: str | None = None
    """Where it ended: `prompt`, `response` or `gate`."""
    reason: str | None = None
    check: str | None = None
    """The gate check that rejected the child (see `middo.refine.gate.CHECKS`)."""
    new_prompt: str | None = None
    child: list[dict] | None = None
    scores: dict = field(default_factory=dict)
    replies: dict = field(default_factory=dict)
    """The teacher's raw reply text per phase (`prompt`, `response`), as received, for the refine log."""


def plan_tasks(samples: pl.DataFrame, flags: pl.DataFrame, knn: pl.DataFrame, config: RefineConfig) -> list[Task]:
    """Tasks in dataset order; flags and the neighbours table must cover the dataset's ids 1:1."""
    table = join_by_id(samples.select("id"), flags.select("id", "hard", "sparse", "low_quality"), "dataset",
                       "flags table")
    flagged = samples.select("id", "messages", "meta").join(table, on="id", how="left", maintain_order="left").filter(
        pl.col("hard") | pl.col("sparse") | pl.col("low_quality"))
    sparse_ids = flagged.filter(pl.col("sparse"))["id"].to_list()
    neighbours = _neighbour_ids(samples, knn, sparse_ids, config.max_hints)
    hint_ids = {n for near in neighbours.values() for n in near}
    hint_rows = samples.filter(pl.col("id").is_in(list(hint_ids))).select("id", "messages")
    hint_text = {row["id"]: cut(prompt_text(list(row["messages"])), config.hint_chars)
                 for row in hint_rows.iter_rows(named=True)}
    tasks: list[Task] = []
    for row in flagged.iter_rows(named=True):
        messages = list(row["messages"])
        for rewrite in rewrites(row["hard"], row["low_quality"], config.hard_and_low_quality):
            tasks.append(Task(row["id"], rewrite, 0, messages, earlier=earlier_notes(row["meta"], rewrite, row["id"])))
        if row["sparse"]:
            hints = tuple(hint_text[n] for n in neighbours[row["id"]])
            earlier = earlier_notes(row["meta"], "synthesize", row["id"])
            tasks += [Task(row["id"], "synthesize", v, messages, hints, earlier)
                      for v in range(config.synth_per_sample)]
    return tasks


def rewrites(hard: bool, low_quality: bool, both: str) -> list[str]:
    """The rewriting operations of a sample: simplify when hard, improve when low quality and (unless
    `refine.hard_and_low_quality` is `both`) not hard."""
    ops = ["simplify"] if hard else []
    if low_quality and (not hard or both == "both"):
        ops.append("improve")
    return ops


def _neighbour_ids(samples: pl.DataFrame, knn: pl.DataFrame, wanted: list[str], limit: int) -> dict[str, list[str]]:
    """The first `limit` neighbour ids of each id in `wanted` (the knn table must cover the dataset 1:1)."""
    if not wanted:
        return {}
    table = join_by_id(samples.select("id"), knn.select("id", "neighbor_ids"), "dataset", "knn table")
    near = {row["id"]: list(row["neighbor_ids"])[:limit]
            for row in table.filter(pl.col("id").is_in(wanted)).iter_rows(named=True)}
    needed = {n for ids in near.values() for n in ids}
    missing = needed - set(samples.filter(pl.col("id").is_in(list(needed)))["id"].to_list())
    if missing:
        raise InputError(f"knn table: neighbours {sorted(missing)[:3]} are not in the dataset; re-run the score and "
                         "cluster stages of this round")
    return near


class TeacherFailure(MiddoError):
    """Teacher calls failed beyond what `refine.on_teacher_failure` and `refine.max_failure_rate` allow."""


def prompt_request(task: Task, config: RefineConfig, temperature: float, prompts: RefinePrompts) -> ChatRequest:
    """The phase-one request of a task: write the new prompt (the sample's earlier turns shown as context)."""
    context = fit_context(task.messages, config.context_max_tokens)
    if task.op == "synthesize":
        messages = prompts.synthesize(task.messages, list(task.hints), task.variant, config.synth_per_sample,
                                      task.earlier, context)
    else:
        messages = prompts.rewrite(task.op, task.messages, task.earlier, context)
    response_format = JSON_FORMAT if prompts.reply_format == "json" else None
    return ChatRequest(messages=messages, temperature=temperature, max_tokens=config.prompt_max_tokens, op=task.op,
                       response_format=response_format)


def response_request(attempt: Attempt, config: RefineConfig, temperature: float,
                     prompts: RefinePrompts) -> ChatRequest:
    """The phase-two request of a task: answer its new prompt, after the parent's earlier turns when the child
    continues the parent's conversation (simplify, improve)."""
    task = attempt.task
    context = fit_context(task.messages, config.context_max_tokens) if task.op in CONTINUING_OPS else None
    return ChatRequest(messages=prompts.respond(attempt.new_prompt, context), temperature=temperature,
                       max_tokens=config.response_max_tokens, op=f"{attempt.task.op}:respond")


def run_teacher(tasks: list[Task], teacher: Teacher, config: RefineConfig, temperature: float,
                prompts: RefinePrompts) -> list[Attempt]:
    """Both phases; every attempt comes back with a child or with the reason it has none.

    With `on_teacher_failure: fail`, failed calls of a phase raise TeacherFailure before the next phase starts; so
    does a phase in which more than `max_failure_rate` of the requests got no usable reply.
    """
    attempts = [Attempt(task) for task in tasks]
    requests = [prompt_request(a.task, config, temperature, prompts) for a in attempts]
    replies = teacher.complete(requests) if requests else []
    for attempt, reply in zip(attempts, replies, strict=True):
        attempt.new_prompt = _read(attempt, reply, "prompt", prompts.reply_format)
    _stop_on_failure(attempts, config, "prompt")
    _check_failure_rate(attempts, config, "prompt")
    live = [a for a in attempts if a.new_prompt is not None]
    replies = teacher.complete([response_request(a, config, temperature, prompts) for a in live]) if live else []
    for attempt, reply in zip(live, replies, strict=True):
        response = _read(attempt, reply, "response", prompts.reply_format)
        if response is not None:
            attempt.child = child_messages(attempt.task.messages, attempt.task.op, attempt.new_prompt, response)
    _stop_on_failure(attempts, config, "response")
    _check_failure_rate(live, config, "response")
    return attempts


def _stop_on_failure(attempts: list[Attempt], config: RefineConfig, phase: str) -> None:
    failed = [a for a in attempts if a.outcome == "teacher_error" and a.phase == phase]
    if failed and config.on_teacher_failure == "fail":
        raise TeacherFailure(
            f"{len(failed)} teacher calls of the {phase} phase failed (first: {failed[0].reason}); fix the teacher "
            "endpoint and re-run (replies already received are cached), or set refine.on_teacher_failure: keep"
        )


def _check_failure_rate(sent: list[Attempt], config: RefineConfig, phase: str) -> None:
    """TeacherFailure when more than `refine.max_failure_rate` of a phase's requests got no usable reply."""
    failed = [a for a in sent if a.phase == phase and a.outcome in ("teacher_error", "unparsed")]
    if not failed or len(failed) <= config.max_failure_rate * len(sent):
        return
    why = Counter(_failure_kind(a) for a in failed)
    raise TeacherFailure(
        f"{len(failed)} of {len(sent)} teacher requests of the {phase} phase got no usable reply "
        f"({', '.join(f'{kind}: {n}' for kind, n in why.most_common())}; first: {failed[0].reason}), above "
        f"refine.max_failure_rate = {config.max_failure_rate:g}; nothing is written, so this round is not recorded "
        "as done. Fix the teacher (endpoint, model, prompts) and re-run: replies already received are cached. To keep "
        "the parents of failed requests anyway, raise refine.max_failure_rate"
    )


def _failure_kind(attempt: Attempt) -> str:
    if attempt.outcome == "unparsed":
        return "no JSON object nor final marker" if "no_json" in attempt.reason else "no final marker"
    return attempt.reason.removeprefix(FAILED_PREFIX).split(":", 1)[0]


def _read(attempt: Attempt, reply: ChatReply, phase: str, reply_format: str = "markers") -> str | None:
    if reply.text is not None:
        attempt.replies[phase] = reply.text
    if reply.error is not None or reply.text is None:
        attempt.outcome, attempt.phase = "teacher_error", phase
        attempt.reason = f"{FAILED_PREFIX}{(reply.error or 'no text')[:ERROR_CHARS]}"
        return None
    parsed = read_reply(reply.text, phase, reply_format)
    if parsed.failure:
        attempt.outcome, attempt.phase = "unparsed", phase
        what = "JSON object with a `text` string nor final marker" if parsed.failure == "no_json" else "final marker"
        attempt.reason = f"reply has no usable {what} ({parsed.failure})"
    return parsed.text

