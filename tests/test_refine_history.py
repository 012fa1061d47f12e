"""A later round tells the teacher what became of its earlier attempts on a kept sample: the notes come from the
meta that merge writes, only for the same operation, and change the request, so a failed attempt is not served
again from the request cache; the simulated teacher still reads the task and draws a fresh reply."""

from __future__ import annotations

import json

import pytest

from middo.demo.teacher import simulate
from middo.errors import InputError
from middo.refine import contract as P
from middo.refine.config import RefineConfig
from middo.refine.history import earlier_notes
from middo.refine.merge import kept_meta, merge_round
from middo.refine.operations import Attempt, Task, plan_tasks, prompt_request
from middo.refine.prompts import load_refine_prompts
from tests.test_refine_units import flags_for, knn_for, samples


def failed_improve(parent: str, messages: list[dict]) -> Attempt:
    return Attempt(Task(parent, "improve", 0, messages), outcome="unparsed", phase="response",
                   reason="reply has no usable final marker (no_marker)")


def test_notes_read_back_what_merge_recorded_for_the_same_op_only():
    messages = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "6"}]
    synth = Attempt(Task("p", "synthesize", 0, messages), outcome="accepted", child=messages)
    meta = kept_meta(json.dumps({"family": "arith"}), [failed_improve("p", messages), synth], round_number=1)
    (improve_note,) = earlier_notes(meta, "improve")
    assert improve_note.startswith("In round 1 the improve attempt") and "no usable final marker" in improve_note
    assert earlier_notes(meta, "synthesize") == ("In round 1 the synthesize attempt on this sample was accepted as a "
                                                  "new sample.",)
    assert earlier_notes(meta, "simplify") == ()
    assert earlier_notes('{"family": "arith"}', "improve") == earlier_notes(None, "improve") == ()
    with pytest.raises(InputError, match="sample s1: its `meta` is not valid JSON"):
        earlier_notes("not json", "improve", "s1")
    with pytest.raises(InputError, match="sample s1: its `meta` is a JSON array, not an object"):
        earlier_notes("[1]", "improve", "s1")


def test_a_kept_parent_gets_a_different_request_next_round_and_a_fresh_one_does_not():
    frame = samples(3)
    flags = flags_for(frame, low=(0, 1))
    round_one = plan_tasks(frame, flags, knn_for(frame), RefineConfig())
    first = [prompt_request(task, RefineConfig(), 0.0, load_refine_prompts()) for task in round_one]
    assert all(P.EARLIER_OPEN not in request.messages[1]["content"] for request in first)
    attempts = [failed_improve(task.parent, task.messages) for task in round_one[:1]]
    kept = merge_round(frame, attempts, round_number=1)
    assert kept["id"].to_list() == frame["id"].to_list()
    round_two = plan_tasks(kept, flags, knn_for(kept), RefineConfig())
    second = [prompt_request(task, RefineConfig(), 0.0, load_refine_prompts()) for task in round_two]
    retried, fresh = second[0].messages[1]["content"], second[1].messages[1]["content"]
    assert retried.startswith(first[0].messages[1]["content"]) and retried != first[0].messages[1]["content"]
    assert f"{P.EARLIER_OPEN}\nIn round 1 the improve attempt on this sample was not used: reply has no" in retried
    assert retried.endswith("write a different task.")
    assert fresh == first[1].messages[1]["content"]


def test_the_simulated_teacher_reads_the_task_past_the_notes_and_draws_anew():
    messages = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "6"}]
    note = ("In round 1 the improve attempt on this sample was not used: x.",)
    plain = simulate({"messages": load_refine_prompts().rewrite("improve", messages)}, error_rate=0.0)
    noted = simulate({"messages": load_refine_prompts().rewrite("improve", messages, note)}, error_rate=0.0)
    assert plain.mode == noted.mode == "ok" and "2 + 3" in plain.text and "2 + 3" in noted.text
    modes = set()
    for round_number in range(1, 40):  # each note changes the request, so each round's error draw is its own
        earlier = (f"In round {round_number} the improve attempt on this sample was not used: x.",)
        request = {"messages": load_refine_prompts().rewrite("improve", messages, earlier)}
        modes.add(simulate(request, error_rate=0.5).mode)
    assert "ok" in modes and len(modes) > 1
