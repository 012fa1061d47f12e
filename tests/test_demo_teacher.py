"""The simulated teacher: each refine operation answered in the marked format, errors at the configured rate, and
the same behaviour behind the real loopback server through the openai client."""

from __future__ import annotations

import random

import pytest
from openai import OpenAI

from middo.demo import sim_process
from middo.demo.defects import garbled_prompt, noisy_words
from middo.demo.families import FAMILIES
from middo.demo.sim_teacher import make_sim_teacher
from middo.demo.tasks import Item, family, recognise, render, solve
from middo.demo.teacher import FRAMES, SIM_MODEL, between, running_sim_teacher, simulate
from middo.errors import MiddoError
from middo.refine import contract as P
from middo.refine.prompts import load_refine_prompts
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatRequest

PROMPTS = load_refine_prompts()


def chat(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def body(messages: list[dict]) -> dict:
    return {"model": "whatever", "messages": messages}


def final(outcome) -> str:
    assert outcome.mode == "ok" and outcome.text.count(P.FINAL_OPEN) == 1, outcome
    return between(outcome.text, P.FINAL_OPEN, P.FINAL_CLOSE)


def items(hard: bool, per_family: int = 15, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    return [fam.draw(rng, hard) for fam in FAMILIES.values() for _ in range(per_family)]


def test_respond_gives_the_correct_answer_in_markers():
    for item in items(hard=False) + items(hard=True):
        outcome = simulate(body(PROMPTS.respond(render(item, 1))), error_rate=0.0)
        assert outcome.op == "respond" and final(outcome) == solve(item)


def phrasings(item):
    """Every clean wording the simulated teacher may give `item`: each template inside each of its frames."""
    n_templates = len(family(item.family).templates(item))
    return {frame.format(q=render(item, t)) for t in range(n_templates) for frame in FRAMES}


def test_every_family_reads_its_items_back_inside_every_teacher_frame():
    for item in items(hard=False, per_family=40, seed=11):
        for text in phrasings(item):
            assert recognise(text) == item, text


def test_teacher_tasks_vary_in_wording_so_few_copy_a_seed_prompt():
    texts = [final(simulate(body(PROMPTS.rewrite("simplify", chat(render(item, 0), solve(item)))), 0.0))
             for item in items(hard=True)]
    written = [recognise(text) for text in texts]
    plain = {render(item, t) for item in written for t in range(len(family(item.family).templates(item)))}
    assert sum(text not in plain for text in texts) > len(texts) / 2


def test_simplify_writes_the_one_step_form_of_an_over_hard_item():
    for item in items(hard=True):
        prompt = render(item, 0)
        new = recognise(final(simulate(body(PROMPTS.rewrite("simplify", chat(prompt, solve(item)))), 0.0)))
        assert new == family(item.family).simplify(item), prompt
        assert not family(new.family).is_hard(new)


def test_improve_rewrites_a_garbled_prompt_cleanly():
    rng = random.Random(1)
    for item in items(hard=False):
        prompt, how = garbled_prompt(item, 0, rng)
        text = final(simulate(body(PROMPTS.rewrite("improve", chat(prompt, solve(item)))), 0.0))
        new = recognise(text)
        assert new is not None and new.complete and new.family == item.family and text != prompt
        if how == "noise":  # typos only: the teacher recovers the very question
            assert new == item
        assert text in phrasings(new), text


def test_synthesize_writes_a_new_item_of_the_sparse_family():
    rng = random.Random(2)
    for item in items(hard=False, per_family=5):
        hints = [family(item.family).draw(rng, hard=False) for _ in range(3)]
        messages = PROMPTS.synthesize(chat(render(item, 0), solve(item)), [render(h, 1) for h in hints], 0, 2)
        new = recognise(final(simulate(body(messages), 0.0)))
        assert new is not None and new.family == item.family and new != item and new not in hints


def test_errors_at_the_configured_rate_and_deterministic():
    requests = [body(PROMPTS.respond(render(item, 0))) for item in items(hard=False, per_family=70, seed=3)]
    outcomes = [simulate(request, error_rate=0.3, seed=5) for request in requests]
    assert outcomes == [simulate(request, error_rate=0.3, seed=5) for request in requests]
    modes = [o.mode for o in outcomes]
    assert abs(sum(m != "ok" for m in modes) / len(modes) - 0.3) < 0.06
    assert {"wrong", "unmarked", "server_error"} <= set(modes)
    for request, outcome in zip(requests, outcomes, strict=True):
        item = recognise(between(request["messages"][1]["content"], P.PROMPT_OPEN, P.PROMPT_CLOSE))
        if outcome.mode == "wrong":
            assert between(outcome.text, P.FINAL_OPEN, P.FINAL_CLOSE) != solve(item)
        elif outcome.mode == "unmarked":
            assert P.FINAL_OPEN not in outcome.text and solve(item) in outcome.text
        else:  # ok, or a server error whose retry gets the right answer
            assert between(outcome.text, P.FINAL_OPEN, P.FINAL_CLOSE) == solve(item)
    assert all(simulate(request, error_rate=0.0).mode == "ok" for request in requests)


def test_unrecognised_requests_get_no_marked_answer():
    unknown = simulate(body(PROMPTS.respond("Write a poem about the sea.")), 0.0)
    no_op = simulate(body([{"role": "user", "content": "hello"}]), 0.0)
    for outcome in (unknown, no_op):
        assert not outcome.recognised and P.FINAL_OPEN not in outcome.text
    garbled_answer = noisy_words("Write a poem about the sea", random.Random(0), rate=1.0)
    assert P.FINAL_OPEN not in simulate(body(PROMPTS.respond(garbled_answer)), 0.0).text


def test_openai_client_gets_replies_from_the_loopback_server():
    prompt = "What is 347 + 589?"
    with running_sim_teacher(error_rate=0.0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        client = OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0)
        response = client.chat.completions.create(
            model=SIM_MODEL, messages=PROMPTS.rewrite("simplify", chat(prompt, "936"))
        )
        assert "simulated" in response.model
        assert between(response.choices[0].message.content, P.FINAL_OPEN, P.FINAL_CLOSE) in phrasings(
            Item("arith", "expr", (7, "+", 9))
        )


def test_sim_backend_retries_past_simulated_server_errors():
    cfg = TeacherConfig(backend="sim", options={"error_rate": 0.9}, max_retries=2, backoff_base_s=0.0,
                        backoff_max_s=0.0)
    prompts = [render(item, 0) for item in items(hard=False, per_family=4, seed=9)]
    requests = [ChatRequest(PROMPTS.respond(p), temperature=0.0, max_tokens=32, op="respond") for p in prompts]
    expected = [simulate({"messages": r.messages}, 0.9) for r in requests]
    with make_sim_teacher(cfg) as teacher:
        replies = teacher.complete(requests)
        usage = teacher.usage()
    assert usage["simulated"] is True and usage["model"] == SIM_MODEL
    assert all(reply.ok for reply in replies), [reply.error for reply in replies if not reply.ok]
    n_server_errors = sum(o.mode == "server_error" for o in expected)
    assert n_server_errors > 0 and usage["retries"] == n_server_errors
    for reply, outcome in zip(replies, expected, strict=True):
        assert reply.text == outcome.text
    counted = teacher.server.stats  # by the server's own process, reported when the teacher closed it
    assert counted.total == len(requests) + n_server_errors == usage["attempts"]
    assert counted.by_status == {"200": len(requests), "500": n_server_errors}


def test_a_sim_server_process_that_cannot_start_is_a_message(monkeypatch):
    monkeypatch.setattr(sim_process.sys, "executable", "false")  # exits 1 at once, prints nothing
    with pytest.raises(MiddoError, match="simulated teacher's server did not start \\(exit code 1"):
        sim_process.SimServerProcess(0.1, 0)


@pytest.mark.parametrize("op", ["simplify", "improve"])
def test_wrong_mode_of_prompt_ops_is_a_sloppy_task(op):
    requests = [body(PROMPTS.rewrite(op, chat(render(item, 0), solve(item)))) for item in items(True, 20, 4)]
    sloppy = [o for o in (simulate(r, 0.5, seed=2) for r in requests) if o.mode == "wrong"]
    assert sloppy
    for outcome in sloppy:
        text = between(outcome.text, P.FINAL_OPEN, P.FINAL_CLOSE)
        item = recognise(text)
        assert item is None or text not in phrasings(item)
