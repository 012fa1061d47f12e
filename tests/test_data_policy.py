"""The ingest policy: conversation repairs, empty text after invisible characters, literal special tokens; counts."""

import json

import pytest

from middo.config import section
from middo.data.config import DataConfig
from middo.data.formats import TURN_FIELDS, check_messages, is_blank
from middo.data.ingest import ingest
from middo.data.jsonstream import BadRow
from middo.data.normalise import REPAIRS, Dropped, IngestPolicy, apply_policy, escape_special_tokens
from middo.data.schema import read_samples
from middo.errors import ConfigError, InputError

U, A, S = "user", "assistant", "system"
STRICT = IngestPolicy(conversations="strict")


def turns(*pairs):
    return [{"role": role, "content": text} for role, text in pairs]


def contents(messages):
    return [(m["role"], m["content"]) for m in messages]


def test_leading_assistant_turns_are_dropped_after_the_system_turn():
    row = apply_policy(turns((S, "sys"), (A, "orphan 1"), (A, "orphan 2"), (U, "Q"), (A, "R")), {}, IngestPolicy())
    assert contents(row.messages) == [(S, "sys"), (U, "Q"), (A, "R")]
    assert row.repairs == ["leading_assistant_dropped"] and row.meta == {REPAIRS: ["leading_assistant_dropped"]}
    check_messages(row.messages)


def test_consecutive_same_role_turns_merge_with_a_blank_line_and_turn_fields_follow():
    meta = {"id": "c1", TURN_FIELDS: {"0": {"x": 0}, "2": {"x": 2}, "3": {"x": 3}, "4": {"x": 4}}}
    messages = turns((A, "orphan"), (U, "part 1"), (U, "part 2"), (A, "R1"), (A, "R2"), (U, "Q2"), (A, "R3"))
    row = apply_policy(messages, meta, IngestPolicy())
    assert contents(row.messages) == [(U, "part 1\n\npart 2"), (A, "R1\n\nR2"), (U, "Q2"), (A, "R3")]
    assert row.repairs == ["leading_assistant_dropped", "same_role_merged"]
    # the orphan's fields go with it; turns 3 and 4 became turn 1 (the first one's fields win a clash)
    assert row.meta == {"id": "c1", TURN_FIELDS: {"0": {"x": 2}, "1": {"x": 3}}, REPAIRS: row.repairs}
    assert meta[TURN_FIELDS]["0"] == {"x": 0}  # the input is not changed


def test_well_formed_conversations_are_untouched():
    messages = turns((S, "sys"), (U, "Q"), (A, "R"), (U, "Q2"), (A, "R2"))
    row = apply_policy(messages, {"k": 1}, IngestPolicy())
    assert row.messages == messages and row.meta == {"k": 1} and row.repairs == [] and not row.special_tokens


def test_assistant_only_conversation_is_a_bad_row():
    with pytest.raises(BadRow) as info:
        apply_policy(turns((S, "sys"), (A, "R1"), (A, "R2")), {}, IngestPolicy())
    assert info.value.reason == "no_user_turn" and not isinstance(info.value, Dropped)


def test_strict_repairs_nothing_and_the_checks_refuse_the_row():
    for messages in (turns((A, "orphan"), (U, "Q"), (A, "R")), turns((U, "Q"), (U, "Q2"), (A, "R"))):
        row = apply_policy(messages, {}, STRICT)
        assert row.messages == messages and row.repairs == []
        with pytest.raises(BadRow, match="where 'user' was expected|where 'assistant' was expected") as info:
            check_messages(row.messages)
        assert info.value.reason == "roles_out_of_order"


@pytest.mark.parametrize("text", ["", "  \n", "\u200b", "\ufeff\u200b \u200d", "\u2060\u00a0\u200e"])
def test_text_with_nothing_visible_is_blank(text):
    assert is_blank(text)


def test_visible_text_among_invisible_characters_is_not_blank():
    assert not is_blank("\u200bok\u200b") and not is_blank("\u00e9")


@pytest.mark.parametrize(("messages", "reason"), [
    (turns((U, "Q"), (A, "\u200b")), "empty_response"),
    (turns((U, "\ufeff \n"), (A, "R")), "empty_turn"),
    (turns((U, "Q"), (A, "\u200b"), (A, "R")), "empty_response"),  # checked before the merge can hide it
    ([], "empty_conversation"),
])
def test_empty_text_is_dropped_or_a_bad_row(messages, reason):
    with pytest.raises(Dropped) as info:
        apply_policy(messages, {}, IngestPolicy())
    assert info.value.reason == reason
    with pytest.raises(BadRow) as info:
        apply_policy(messages, {}, IngestPolicy(empty_text="bad_row"))
    assert info.value.reason == reason and not isinstance(info.value, Dropped)
    assert "write its text or drop the row" in str(info.value) or reason == "empty_conversation"


def test_a_blank_leading_assistant_turn_goes_with_the_repair():
    row = apply_policy(turns((A, "\u200b"), (U, "Q"), (A, "R")), {}, IngestPolicy())
    assert contents(row.messages) == [(U, "Q"), (A, "R")]


@pytest.mark.parametrize("token", ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|eot_id|>",
                                   "<|begin_of_text|>", "<|start_header_id|>", "<start_of_turn>",
                                   "<｜end▁of▁sentence｜>"])
def test_special_tokens_are_escaped_by_default(token):
    messages = turns((U, f"What does {token} mean?"), (A, f"It marks a boundary: {token}"))
    row = apply_policy(messages, {}, IngestPolicy())
    escaped = token[0] + "\u200b" + token[1:]
    assert contents(row.messages) == [(U, f"What does {escaped} mean?"), (A, f"It marks a boundary: {escaped}")]
    assert row.special_tokens and row.repairs == ["special_tokens_escaped"]
    assert escape_special_tokens(row.messages[0]["content"]) == row.messages[0]["content"]  # idempotent


def test_special_tokens_dropped_or_kept_by_policy():
    messages = turns((U, "Q"), (A, "done<|endoftext|>"))
    with pytest.raises(Dropped, match="turn 2 holds '<|endoftext|>'") as info:
        apply_policy(messages, {}, IngestPolicy(special_tokens="drop"))
    assert info.value.reason == "special_tokens"
    row = apply_policy(messages, {}, IngestPolicy(special_tokens="keep"))
    assert row.messages == messages and row.special_tokens and row.repairs == []


def test_plain_markup_is_not_a_special_token():
    text = "a <b>bold</b> <|not a token|> x<|y and <ss> or <s >"
    assert escape_special_tokens(text) == text


def test_escaped_special_tokens_tokenise_as_plain_text():
    """Under `keep` the chat template's tokenizer reads a literal `<|im_end|>` as the control token; escaped, not."""
    from middo.model.tokenizer import IM_END, train_tokenizer
    from tests.conftest import corpus_lines

    tokenizer = train_tokenizer(corpus_lines(200), vocab_size=400)
    end = tokenizer.convert_tokens_to_ids(IM_END)
    messages = turns((U, "Q"), (A, f"stop here {IM_END} then go on"))
    for policy, expected in (("keep", 3), ("escape", 2)):  # the template closes each of the 2 turns itself
        row = apply_policy(messages, {}, IngestPolicy(special_tokens=policy))
        text = tokenizer.apply_chat_template(row.messages, tokenize=False)
        assert tokenizer(text, add_special_tokens=False)["input_ids"].count(end) == expected


def _write_rows(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return str(path)


def sharegpt(*pairs, **extra):
    return {"conversations": [{"from": who, "value": text} for who, text in pairs], **extra}


ROWS = [
    sharegpt(("human", "Q0"), ("gpt", "R0")),
    sharegpt(("gpt", "orphan"), ("human", "Q1"), ("gpt", "R1")),  # leading assistant
    sharegpt(("human", "Q2a"), ("human", "Q2b"), ("gpt", "R2")),  # two user turns in a row
    sharegpt(("human", "Q3"), ("gpt", "\u200b")),  # invisible response
    sharegpt(("human", "Q4"), ("gpt", "ends with <|endoftext|>")),
    sharegpt(("gpt", "R5"), ("gpt", "R5b")),  # assistant only
    sharegpt(),  # no turns
]


def test_ingest_counts_every_reason_in_the_report_and_the_log(tmp_path, caplog):
    path = _write_rows(tmp_path / "chats.jsonl", ROWS)
    with caplog.at_level("INFO", logger="middo"):
        report = ingest([path], tmp_path / "d.parquet", on_error="skip")
    counts = report.to_dict()
    assert (counts["rows"], counts["samples"]) == (7, 4)
    assert counts["repaired"] == {"leading_assistant_dropped": 1, "same_role_merged": 1, "special_tokens_escaped": 1}
    assert counts["dropped"] == {"empty_conversation": 1, "empty_response": 1} and counts["dropped_total"] == 2
    assert counts["skipped"] == {"no_user_turn": 1} and counts["special_token_rows"] == 1
    assert counts["policy"] == {"conversations": "normalise", "empty_text": "drop", "special_tokens": "escape"}
    assert "line 4: turn 2 (assistant) has no visible text" in counts["examples"]["empty_response"]
    assert "leading_assistant_dropped 1" in caplog.text
    assert "dropped: empty_conversation 1, empty_response 1" in caplog.text
    samples = {row["messages"][0]["content"]: row for row in read_samples(tmp_path / "d.parquet").to_dicts()}
    assert samples["Q2a\n\nQ2b"]["messages"][1]["content"] == "R2"
    assert json.loads(samples["Q1"]["meta"]) == {REPAIRS: ["leading_assistant_dropped"]}
    assert samples["Q4"]["messages"][1]["content"] == "ends with <\u200b|endoftext|>"


def test_policy_drops_do_not_stop_a_fail_run_but_bad_rows_do(tmp_path):
    path = _write_rows(tmp_path / "chats.jsonl", ROWS[:5] + ROWS[6:])
    report = ingest([path], tmp_path / "d.parquet")  # on_error fail: repairs and drops are not errors
    assert report.samples == 4 and not report.skipped and sum(report.dropped.values()) == 2
    with pytest.raises(InputError, match=r"line 2: turn 1 is 'assistant' where 'user' was expected"):
        ingest([path], tmp_path / "e.parquet", policy=STRICT)
    with pytest.raises(InputError, match=r"line 4: turn 2 \(assistant\) has no visible text"):
        ingest([path], tmp_path / "e.parquet", policy=IngestPolicy(empty_text="bad_row"))


def test_strict_skip_counts_what_normalise_repairs(tmp_path):
    path = _write_rows(tmp_path / "chats.jsonl", ROWS)
    report = ingest([path], tmp_path / "d.parquet", on_error="skip", policy=IngestPolicy("strict", "bad_row", "keep"))
    assert report.samples == 2 and not report.dropped and not report.repaired and report.special_token_rows == 1
    assert dict(report.skipped) == {"roles_out_of_order": 3, "empty_response": 1, "empty_conversation": 1}


def test_data_params_choose_the_policy_with_suggestions():
    config = section(DataConfig, {"data": {"seed": "s.jsonl", "eval": "e.jsonl"}}, "data")
    assert config.policy == IngestPolicy()
    config = section(DataConfig, {"data": {"seed": "s", "eval": "e", "conversations": "strict",
                                           "special_tokens": "keep"}}, "data")
    assert config.policy == IngestPolicy("strict", "drop", "keep")
    with pytest.raises(ConfigError, match="normalise"):
        section(DataConfig, {"data": {"seed": "s", "eval": "e", "conversations": "normalize"}}, "data")
    with pytest.raises(ConfigError, match="empty_text"):
        section(DataConfig, {"data": {"seed": "s", "eval": "e", "empty_turns": "drop"}}, "data")
    with pytest.raises(ConfigError, match="choose one of"):
        IngestPolicy(special_tokens="strip")
