"""Refine and judge prompts come from template files: packaged by default, a user's file through params."""

from __future__ import annotations

import pytest
import yaml

from middo.errors import ConfigError
from middo.refine.contract import FINAL_CLOSE, FINAL_OPEN, SAMPLE_CLOSE, SAMPLE_OPEN, operation_of
from middo.refine.contract import RESPONSE_OPEN as TAG_RESPONSE
from middo.refine.prompts import OPERATIONS, OPTIONAL, load_refine_prompts
from middo.signals.judge_prompts import ASPECTS, RESPONSE_OPEN, load_judge_prompts
from middo.templates import load_template

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "5"}]


def refine_template() -> dict:
    return load_template(None, "refine.yaml", "refine.prompts")[0]


def write(tmp_path, template: dict, name: str = "prompts.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(template), encoding="utf-8")
    return path


def test_packaged_refine_prompts_follow_the_contract_in_real_use_wording():
    prompts = load_refine_prompts()
    for op in OPERATIONS:
        system = prompts.system_message(op)["content"]
        assert operation_of(system) == op and FINAL_OPEN in system and FINAL_CLOSE in system
        assert "small language model" not in system and "{" not in system
    assert SAMPLE_OPEN in prompts.system_message("simplify")["content"]


def test_a_users_refine_template_changes_the_wording_not_the_markers(tmp_path):
    template = refine_template() | {"improve": "Fix the task between {sample_open} and {sample_close}. Be brief."}
    prompts = load_refine_prompts(write(tmp_path, template))
    system, user = prompts.rewrite("improve", MESSAGES)
    assert system["content"].splitlines()[1].startswith(f"Fix the task between {SAMPLE_OPEN} and {SAMPLE_CLOSE}. "
                                                         "Be brief. The task's original answer is shown")
    assert user == load_refine_prompts().rewrite("improve", MESSAGES)[1]
    assert prompts.system_message("simplify") == load_refine_prompts().system_message("simplify")


def test_prompt_only_requests_show_no_response_and_say_nothing_of_one():
    shown, alone = load_refine_prompts(), load_refine_prompts(show_response=False)
    for op in ("simplify", "improve"):
        system, user = alone.rewrite(op, MESSAGES)
        assert TAG_RESPONSE not in user["content"] and "5" not in user["content"]
        assert TAG_RESPONSE not in system["content"] and "original answer" not in system["content"]
        assert TAG_RESPONSE in shown.rewrite(op, MESSAGES)[1]["content"]


def test_answer_style_picks_the_respond_instruction_and_a_copy_may_omit_the_optional_entries(tmp_path):
    concise = load_refine_prompts().system_message("respond")["content"]
    full = load_refine_prompts(answer_style="comprehensive").system_message("respond")["content"]
    assert "no longer than it needs to be" in concise and "comprehensive and accurate" in full
    assert operation_of(full) == "respond" and FINAL_OPEN in full
    old_copy = {k: v for k, v in refine_template().items() if k not in (*OPTIONAL, "context")}
    packaged = load_refine_prompts(answer_style="comprehensive")
    copied = load_refine_prompts(write(tmp_path, old_copy), answer_style="comprehensive")
    assert (copied.systems, copied.in_context) == (packaged.systems, packaged.in_context)


def test_context_sentences_come_from_the_template(tmp_path):
    context = refine_template()["context"] | {"respond": "Continue the chat in {context_open}."}
    prompts = load_refine_prompts(write(tmp_path, refine_template() | {"context": context}))
    assert prompts.system_message("respond", context=True)["content"].splitlines()[1].endswith(
        "Continue the chat in <context>.")
    assert prompts.system_message("respond") == load_refine_prompts().system_message("respond")
    for op in OPERATIONS:  # the packaged sentences name the block and fit open chat as well as tasks
        assert "<context>" in load_refine_prompts().system_message(op, context=True)["content"]


def test_prompt_ratings_see_the_prompt_alone_unless_asked():
    alone = load_judge_prompts().sample_rating_messages(MESSAGES)
    both = load_judge_prompts(prompt_sees_response=True).sample_rating_messages(MESSAGES)
    for aspect, row, seen in zip(ASPECTS, alone, both, strict=True):
        text = row[0]["content"]
        assert (RESPONSE_OPEN in text) == aspect.startswith("response_") and "[PROMPT]\nWhat is 2 + 2?" in text
        assert RESPONSE_OPEN in seen[0]["content"]


@pytest.mark.parametrize(("change", "message"), [
    ({"improve": "Fix {the_task}."}, r"'improve' instruction or final_rule has a bad placeholder"),
    ({"final_rule": "Reply with the {what} only."}, r"never names <final> and </final>"),
    ({"respond": ""}, r"missing or empty respond"),
    ({"what": {"simplify": "task"}}, r"`what` must name"),
    ({"context": {"simplify": "Earlier turns: {context_open}."}}, r"`context` must give"),
    ({"context": {op: "{turns}" for op in OPERATIONS}}, r"bad placeholder"),
])
def test_a_broken_refine_template_is_an_error_naming_the_file(tmp_path, change, message):
    path = write(tmp_path, refine_template() | change, "broken.yaml")
    with pytest.raises(ConfigError, match=message) as error:
        load_refine_prompts(path)
    assert str(path) in str(error.value)


def test_a_missing_template_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match=r"refine.prompts = .*no such file; copy middo/templates/refine.yaml"):
        load_refine_prompts(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match=r"judge.prompts = .*copy middo/templates/judge.yaml"):
        load_judge_prompts(tmp_path / "none.yaml")


def test_a_users_judge_template_changes_the_questions_and_keeps_the_sample_markers(tmp_path):
    template = load_template(None, "judge.yaml", "judge.prompts")[0]
    template["questions"]["prompt_clarity"] = "How clear is the PROMPT?"
    prompts = load_judge_prompts(write(tmp_path, template))
    rows = prompts.sample_rating_messages(MESSAGES)
    packaged = load_judge_prompts().sample_rating_messages(MESSAGES)
    assert rows[ASPECTS.index("prompt_clarity")][0]["content"].endswith("\n\nHow clear is the PROMPT?")
    assert [r for a, r in zip(ASPECTS, rows, strict=True) if a != "prompt_clarity"] == [
        r for a, r in zip(ASPECTS, packaged, strict=True) if a != "prompt_clarity"]
    del template["questions"]["response_clarity"]
    with pytest.raises(ConfigError, match="missing or empty response_clarity"):
        load_judge_prompts(write(tmp_path, template, "short.yaml"))


def test_prompt_files_are_deps_of_the_stages_that_read_them():
    from middo.demo.params import DEMO_PARAMS
    from middo.pipeline import build_pipeline

    params = {**DEMO_PARAMS, "judge": {"prompts": "prompts/judge.yaml"}, "refine": {"prompts": "prompts/refine.yaml"}}
    stages = build_pipeline(1, params)["stages"]
    assert "${judge.prompts}" in stages["judge-1"]["deps"]
    assert {"${judge.prompts}", "${refine.prompts}"} <= set(stages["refine-1"]["deps"])
    assert not any("prompts" in dep for dep in stages["score-1"]["deps"])
    assert not any("prompts" in dep for dep in build_pipeline(1, DEMO_PARAMS)["stages"]["refine-1"]["deps"])
