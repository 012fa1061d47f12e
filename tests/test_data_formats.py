"""Row formats: detection, role normalisation, conversion to messages, and the reason a row is bad."""

import pytest

from middo.data.formats import ALPACA_SEPARATOR, TURN_FIELDS, detect_format, normalise_role, row_to_messages
from middo.data.jsonstream import BadRow

U, A, S = "user", "assistant", "system"


def _roles(messages):
    return [message["role"] for message in messages]


def test_detect_format_by_keys():
    assert detect_format({"messages": []}) == "openai"
    assert detect_format({"conversations": [], "id": 1}) == "sharegpt"
    assert detect_format({"instruction": "x"}) == "alpaca"
    assert detect_format({"output": "x"}) == "alpaca"
    assert detect_format({"text": "x"}) is None
    assert detect_format([1, 2]) is None


@pytest.mark.parametrize("name", ["human", "User", "prompter"])
def test_user_aliases(name):
    assert normalise_role(name) == U


@pytest.mark.parametrize("name", ["gpt", "bot", "chatgpt", "model", "Assistant", "bing"])
def test_assistant_aliases(name):
    assert normalise_role(name) == A


def test_unknown_role_and_non_string_role():
    with pytest.raises(BadRow, match="unknown role 'tool'") as info:
        normalise_role("tool")
    assert info.value.reason == "unknown_role"
    with pytest.raises(BadRow) as info:
        normalise_role(3)
    assert info.value.reason == "wrong_type"


def test_alpaca_joins_input_and_keeps_system_history_and_extras():
    row = {"instruction": "Add.", "input": "2 and 3", "output": "5", "system": "Be exact.",
           "history": [["Hi", "Hello"]], "category": "math"}
    messages, meta = row_to_messages(row, "alpaca")
    assert _roles(messages) == [S, U, A, U, A]
    assert messages[3]["content"] == "Add." + ALPACA_SEPARATOR + "2 and 3"
    assert messages[1:3] == [{"role": U, "content": "Hi"}, {"role": A, "content": "Hello"}]
    assert meta == {"category": "math"}


def test_sharegpt_and_openai_keep_row_and_turn_fields():
    row = {"id": "c1", "system": "Short.", "conversations": [
        {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A", "markdown": True}]}
    messages, meta = row_to_messages(row, "sharegpt")
    assert messages == [{"role": S, "content": "Short."}, {"role": U, "content": "Q"}, {"role": A, "content": "A"}]
    assert meta == {"id": "c1", TURN_FIELDS: {"2": {"markdown": True}}}
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                        {"role": "assistant", "content": "Yo", "weight": 0}], "lang": "en"}
    messages, meta = row_to_messages(row, "openai")
    assert messages == [{"role": U, "content": "Hi"}, {"role": A, "content": "Yo"}]
    assert meta == {"lang": "en", TURN_FIELDS: {"1": {"weight": 0}}}


@pytest.mark.parametrize(
    ("row", "fmt", "reason"),
    [
        ({"instruction": "", "output": "x"}, "alpaca", "missing_instruction"),
        ({"input": "ctx", "output": "x"}, "alpaca", "missing_instruction"),
        ({"instruction": "Q"}, "alpaca", "missing_response"),
        ({"instruction": "Q", "output": "  "}, "alpaca", "missing_response"),
        ({"instruction": 5, "output": "x"}, "alpaca", "wrong_type"),
        ({"instruction": "Q", "output": "x", "history": [["only one"]]}, "alpaca", "wrong_type"),
        ([1, 2], "alpaca", "wrong_type"),
        ({"conversations": "hi"}, "sharegpt", "wrong_type"),
        ({"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}]}, "sharegpt", "wrong_type"),
        ({"conversations": [{"from": "human"}]}, "sharegpt", "missing_field"),
        ({"id": 1}, "sharegpt", "missing_field"),
        ({"conversations": []}, "sharegpt", "empty_conversation"),
        ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": " "}]}, "openai",
         "empty_response"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "A"}]}, "openai",
         "empty_turn"),
        ({"messages": [{"role": "user", "content": "Q"}]}, "openai", "no_final_assistant"),
        ({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
                       {"role": "user", "content": "more?"}]}, "openai", "no_final_assistant"),
        ({"messages": [{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Q"},
                       {"role": "assistant", "content": "A"}]}, "openai", "roles_out_of_order"),
        ({"messages": [{"role": "user", "content": "Q"}, {"role": "user", "content": "Q2"},
                       {"role": "assistant", "content": "A"}]}, "openai", "roles_out_of_order"),
        ({"messages": [{"role": "user", "content": "Q"}, {"role": "system", "content": "late"},
                       {"role": "assistant", "content": "A"}]}, "openai", "roles_out_of_order"),
        ({"messages": [{"role": "tool", "content": "Q"}]}, "openai", "unknown_role"),
    ],
)
def test_bad_rows_name_their_reason(row, fmt, reason):
    with pytest.raises(BadRow) as info:
        row_to_messages(row, fmt)
    assert info.value.reason == reason
    assert ";" in str(info.value)  # what is wrong; how to fix it
