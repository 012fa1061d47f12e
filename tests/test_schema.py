"""The sample schema, ids, the `meta` column and prompt/response views."""

import json

import polars as pl
import pytest

from middo.data.schema import (
    OPS,
    PROMPT_OPS,
    REFINE_OPS,
    REPLACING_OPS,
    SAMPLE_SCHEMA,
    meta_json,
    prompt_messages,
    read_samples,
    response_text,
    sample_id,
    sample_meta,
    validate_samples,
    with_meta,
    write_samples,
)
from middo.errors import InputError

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "and 3+3?"},
    {"role": "assistant", "content": "6"},
]


def _row(messages, **overrides):
    row = {"id": sample_id(messages), "messages": messages, "source": "t", "round": 0, "parent": None,
           "op": "seed", "meta": "{}"}
    row.update(overrides)
    return row


def test_id_is_16_hex_and_depends_only_on_role_and_content():
    extra_keys = [dict(message, name="x") for message in CHAT]
    assert len(sample_id(CHAT)) == 16
    assert int(sample_id(CHAT), 16) >= 0
    assert sample_id(extra_keys) == sample_id(CHAT)
    assert sample_id(CHAT[:3]) != sample_id(CHAT)
    changed = [*CHAT[:-1], {"role": "assistant", "content": "7"}]
    assert sample_id(changed) != sample_id(CHAT)


def test_prompt_is_everything_before_the_last_assistant_turn():
    assert prompt_messages(CHAT) == CHAT[:4]
    assert response_text(CHAT) == "6"
    with pytest.raises(InputError, match="no assistant turn"):
        response_text(CHAT[:2])


def test_write_then_read_round_trips(tmp_path):
    frame = pl.DataFrame([_row(CHAT), _row(CHAT[:3])], schema=SAMPLE_SCHEMA)
    path = write_samples(frame, tmp_path / "sub" / "d.parquet")
    back = read_samples(path)
    assert back.schema == SAMPLE_SCHEMA
    assert back.to_dicts() == frame.to_dicts()


def test_duplicate_ids_and_missing_columns_are_rejected(tmp_path):
    frame = pl.DataFrame([_row(CHAT), _row(CHAT)], schema=SAMPLE_SCHEMA)
    with pytest.raises(InputError, match="duplicated ids"):
        validate_samples(frame)
    with pytest.raises(InputError, match="missing columns"):
        validate_samples(frame.drop("op"))
    with pytest.raises(InputError, match="middo ingest"):
        read_samples(tmp_path / "nope.parquet")


def test_sample_meta_reads_an_object_and_treats_empty_as_no_fields():
    assert sample_meta(None, "s1") == sample_meta("", "s1") == {}
    assert sample_meta('{"answer": "4", "family": "arith"}', "s1") == {"answer": "4", "family": "arith"}


@pytest.mark.parametrize(("meta", "what"), [("{not json", "is not valid JSON"), ("[1, 2]", "is a JSON array"),
                                            ('"text"', "is a JSON string"), ("null", "is a JSON null")])
def test_sample_meta_that_is_not_a_json_object_is_an_error_naming_the_sample(meta, what):
    with pytest.raises(InputError, match=f"sample s7: its `meta` {what}") as caught:
        sample_meta(meta, "s7")
    assert "JSON object" in str(caught.value) and "middo ingest" in str(caught.value)


def test_with_meta_updates_drops_and_round_trips():
    meta = meta_json({"family": "arith", "answer": "4", "note": "é"})
    assert "é" in meta and list(json.loads(meta)) == ["answer", "family", "note"]  # canonical: sorted, UTF-8 kept
    assert with_meta(meta, "s1") == meta
    assert sample_meta(with_meta(meta, "s1"), "s1") == sample_meta(meta, "s1")
    updated = with_meta(meta, "s1", {"refine": {"round": 1}}, drop=("answer",))
    assert sample_meta(updated, "s1") == {"family": "arith", "note": "é", "refine": {"round": 1}}
    assert with_meta(None, "s1", {"a": 1}) == '{"a": 1}'
    with pytest.raises(InputError, match="sample s1"):
        with_meta("[]", "s1", {"a": 1})


def test_one_operation_vocabulary():
    assert OPS[0] == "seed" and OPS[1:] == REFINE_OPS
    assert set(REPLACING_OPS) < set(REFINE_OPS) and "synthesize" not in REPLACING_OPS
    assert PROMPT_OPS == REFINE_OPS
