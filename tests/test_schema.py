"""The sample schema, ids and prompt/response views."""

import polars as pl
import pytest

from middo.data.schema import (
    SAMPLE_SCHEMA,
    prompt_messages,
    read_samples,
    response_text,
    sample_id,
    validate_samples,
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
