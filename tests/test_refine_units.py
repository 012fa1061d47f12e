"""Refine pieces without a server: the marker parser, the prompt contract, task planning from flags."""

from __future__ import annotations

import polars as pl
import pytest

from middo.config import section
from middo.data.schema import SAMPLE_SCHEMA, sample_id
from middo.errors import ConfigError, InputError, JoinError
from middo.refine import contract as P
from middo.refine.config import RefineConfig
from middo.refine.context import Context, child_messages, fit_context, split_conversation
from middo.refine.operations import Attempt, Task, plan_tasks, prompt_request, response_request
from middo.refine.parse import extract_final
from middo.refine.prompts import load_refine_prompts

PROMPTS = load_refine_prompts()


def test_parser_takes_the_last_marked_block_and_names_failures():
    assert extract_final("thinking <final>draft</final> then <final>\n  Final task.\n</final>").text == "Final task."
    assert extract_final("no markers at all").failure == "no_marker"
    assert extract_final("<final>unclosed").failure == "no_marker"
    assert extract_final("<final>  \n </final>").failure == "empty"


def samples(n: int = 5) -> pl.DataFrame:
    messages = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"task {i}"},
                 {"role": "assistant", "content": f"answer {i}"}] for i in range(n)]
    return pl.DataFrame({"id": [sample_id(m) for m in messages], "messages": messages, "source": "s", "round": 0,
                         "parent": None, "op": "seed", "meta": "{}"}).cast(dict(SAMPLE_SCHEMA))


def flags_for(frame: pl.DataFrame, hard=(), sparse=(), low=()) -> pl.DataFrame:
    ids = frame["id"].to_list()
    return pl.DataFrame({"id": ids, "hard": [i in hard for i in range(len(ids))],
                         "sparse": [i in sparse for i in range(len(ids))],
                         "low_quality": [i in low for i in range(len(ids))], "reasons": [[] for _ in ids]})


def knn_for(frame: pl.DataFrame) -> pl.DataFrame:
    ids = frame["id"].to_list()
    near = [[ids[(i + 1) % len(ids)], ids[(i + 2) % len(ids)]] for i in range(len(ids))]
    return pl.DataFrame({"id": ids, "knn_sim": [0.5] * len(ids), "neighbor_ids": near})


def test_plan_maps_flags_to_operations():
    frame = samples()
    config = RefineConfig(synth_per_sample=2, max_hints=1)
    tasks = plan_tasks(frame, flags_for(frame, hard=(0, 1), sparse=(1, 3), low=(1, 2)), knn_for(frame), config)
    ids = frame["id"].to_list()
    assert [(ids.index(t.parent), t.op, t.variant) for t in tasks] == [
        (0, "simplify", 0), (1, "simplify", 0), (1, "synthesize", 0), (1, "synthesize", 1), (2, "improve", 0),
        (3, "synthesize", 0), (3, "synthesize", 1)]  # hard and low quality: simplify only
    assert tasks[2].hints == ("task 2",)  # the nearest neighbour's prompt, max_hints = 1


def test_plan_requires_one_to_one_tables():
    frame = samples()
    with pytest.raises(JoinError):
        plan_tasks(frame, flags_for(frame).head(3), knn_for(frame), RefineConfig())
    broken = knn_for(frame).with_columns(pl.lit(["0000000000000000"]).alias("neighbor_ids"))
    with pytest.raises(InputError, match="not in the dataset"):
        plan_tasks(frame, flags_for(frame, sparse=(0,)), broken, RefineConfig())


def test_requests_follow_the_tag_contract():
    frame = samples()
    tasks = plan_tasks(frame, flags_for(frame, hard=(0,), sparse=(1,), low=(2,)), knn_for(frame),
                       RefineConfig(synth_per_sample=2, max_hints=2))
    by_op = {t.op: t for t in tasks}
    simplify = prompt_request(by_op["simplify"], RefineConfig(), 0.0, PROMPTS)
    system, user = simplify.messages
    assert system["content"].splitlines()[0] == "Operation: simplify" and simplify.op == "simplify"
    expected = f"{P.SAMPLE_OPEN}\ntask 0\n{P.RESPONSE_OPEN}\nanswer 0\n{P.RESPONSE_CLOSE}\n{P.SAMPLE_CLOSE}"
    assert user["content"] == expected
    assert P.FINAL_OPEN in system["content"] and P.FINAL_CLOSE in system["content"]
    improve = prompt_request(by_op["improve"], RefineConfig(), 0.0, PROMPTS)
    assert improve.messages[0]["content"].startswith("Operation: improve\n")
    synth = [prompt_request(t, RefineConfig(synth_per_sample=2), 0.0, PROMPTS) for t in tasks if t.op == "synthesize"]
    text = synth[0].messages[1]["content"]
    assert synth[0].messages[0]["content"].startswith("Operation: synthesize\n")
    assert text.count(P.HINT_OPEN) == 2 and f"{P.HINT_OPEN}\ntask 2\n{P.HINT_CLOSE}" in text
    assert P.RESPONSE_OPEN not in text
    assert synth[0].messages != synth[1].messages  # variants are distinct requests (no shared cache entry)
    attempt = Attempt(tasks[0], new_prompt="Add 2 and 3.")
    respond = response_request(attempt, RefineConfig(response_max_tokens=99), 0.3, PROMPTS)
    assert respond.messages[0]["content"].splitlines()[0] == "Operation: respond"
    assert respond.messages[1]["content"] == f"{P.PROMPT_OPEN}\nAdd 2 and 3.\n{P.PROMPT_CLOSE}"
    assert (respond.max_tokens, respond.temperature, respond.op) == (99, 0.3, "simplify:respond")
    assert P.CONTEXT_OPEN not in simplify.messages[1]["content"] + respond.messages[1]["content"]


def test_child_keeps_the_parent_system_turn():
    parent = list(samples()["messages"][0])
    for op in ("simplify", "improve", "synthesize"):
        assert child_messages(parent, op, "new task", "new answer") == [
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "new task"},
            {"role": "assistant", "content": "new answer"}]


def turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


CHAT = [turn("system", "Be brief."), turn("user", "a" * 80), turn("assistant", "b" * 8), turn("user", "c" * 8),
        turn("assistant", "d" * 8), turn("user", "final task"), turn("assistant", "final answer")]
"""Earlier turns of 24, 6, 6 and 6 estimated tokens (characters / 4 + 4)."""


def test_a_multi_turn_child_replaces_only_the_final_exchange():
    parts = split_conversation(CHAT)
    assert (parts.system, parts.earlier, parts.final) == (CHAT[:1], CHAT[1:5], CHAT[5:6])
    for op in ("simplify", "improve"):
        assert child_messages(CHAT, op, "new task", "new answer") == [*CHAT[:5], turn("user", "new task"),
                                                                      turn("assistant", "new answer")]
    assert child_messages(CHAT, "synthesize", "new", "answer") == [CHAT[0], turn("user", "new"),
                                                                  turn("assistant", "answer")]


def test_context_keeps_the_newest_whole_turns_within_the_cap():
    assert fit_context(CHAT, 42) == Context(tuple(CHAT[1:5]), 0)
    assert fit_context(CHAT, 41) == Context(tuple(CHAT[2:5]), 1)  # the oldest goes first
    assert fit_context(CHAT, 11) == Context(tuple(CHAT[4:5]), 3)
    assert fit_context(CHAT, 0) == Context((), 4) and fit_context(CHAT, 0).present
    assert not fit_context(CHAT[:1] + CHAT[5:], 100).present


def test_multi_turn_requests_show_the_context_before_the_final_prompt():
    context = fit_context(CHAT, 20)
    system, user = PROMPTS.rewrite("improve", CHAT, (), context)
    assert user["content"] == (f"{P.CONTEXT_OPEN}\n(older turns left out: 1)\nassistant: bbbbbbbb\nuser: cccccccc\n"
                               f"assistant: dddddddd\n{P.CONTEXT_CLOSE}\n{P.SAMPLE_OPEN}\nfinal task\n"
                               f"{P.RESPONSE_OPEN}\nfinal answer\n{P.RESPONSE_CLOSE}\n{P.SAMPLE_CLOSE}")
    assert system == PROMPTS.system_message("improve", context=True) != PROMPTS.system_message("improve")
    assert P.CONTEXT_OPEN in system["content"] and P.CONTEXT_OPEN not in PROMPTS.system_message("improve")["content"]
    single = [turn("user", "final task"), turn("assistant", "final answer")]
    assert PROMPTS.rewrite("improve", single, (), fit_context(single, 20)) == PROMPTS.rewrite("improve", single)
    tasks = [Task("p", op, 0, CHAT) for op in ("simplify", "synthesize")]
    responds = [response_request(Attempt(t, new_prompt="new"), RefineConfig(), 0.0, PROMPTS) for t in tasks]
    assert [P.CONTEXT_OPEN in r.messages[1]["content"] for r in responds] == [True, False]


def test_config_checks():
    with pytest.raises(ConfigError, match="refine.dup_threshold"):
        section(RefineConfig, {"refine": {"dup_threshold": 1.5}}, "refine")
    with pytest.raises(ConfigError, match="choose one of"):
        section(RefineConfig, {"refine": {"on_teacher_failure": "retry"}}, "refine")
    with pytest.raises(ConfigError, match="refine.context_max_tokens = -1; use 0 or more"):
        section(RefineConfig, {"refine": {"context_max_tokens": -1}}, "refine")
