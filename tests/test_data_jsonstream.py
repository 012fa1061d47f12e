"""Streaming JSON readers: element by element, across buffer boundaries, with cut-off and bad-byte recovery."""

import io
import json

import pytest

from middo.data import jsonstream
from middo.data.jsonstream import first_char, iter_json_array, iter_jsonl

ROWS = [{"a": 1, "text": "x" * 50}, {"b": [1, 2, {"c": "é"}]}, 1234567890123456789, "plain", {"n": None}]


def _array(data: bytes):
    return list(iter_json_array(io.BytesIO(data)))


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_array_elements_survive_every_buffer_size(monkeypatch, chunk):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    data = json.dumps(ROWS, indent=2, ensure_ascii=False).encode()
    rows = _array(data)
    assert [row.value for row in rows] == ROWS
    assert all(row.error is None for row in rows)
    assert rows[1].location == "element 2 (line 6)"


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_truncated_array_keeps_every_complete_element(monkeypatch, chunk):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    text = json.dumps(ROWS, indent=2)
    cut = text.index('"plain"') + 3  # inside the fourth element
    rows = _array(text[:cut].encode())
    assert [row.value for row in rows[:3]] == ROWS[:3]
    assert rows[3].error.reason == "truncated_json"
    assert "after 3 complete elements" in str(rows[3].error)
    assert len(rows) == 4
    after_comma = _array(text[: text.index('"plain"')].encode())
    assert after_comma[-1].error.reason == "truncated_json" and len(after_comma) == 4


@pytest.mark.parametrize("chunk", [16, 1 << 20])
def test_syntax_error_stops_the_array_with_its_line(monkeypatch, chunk):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    tail = ",\n".join(json.dumps({"pad": "y" * 100}) for _ in range(50))
    rows = _array(b'[{"a": 1},\n {"b": [1, 2 3]},\n' + tail.encode() + b"]")
    assert rows[0].value == {"a": 1}
    assert rows[1].error.reason == "invalid_json"
    assert "line 2" in str(rows[1].error)
    assert len(rows) == 2


def test_bom_is_accepted_and_bad_bytes_mark_only_their_element(monkeypatch):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", 4)
    rows = _array(b'\xef\xbb\xbf[{"a": "ok"}, {"b": "caf\xe9"}, {"c": "\xc3\xa9"}]')
    assert rows[0].value == {"a": "ok"}
    assert rows[1].error.reason == "not_utf8"
    assert rows[2].value == {"c": "é"}


def test_jsonl_reports_line_numbers_and_skips_blank_lines():
    data = b'\xef\xbb\xbf{"a": 1}\n\n{oops\n{"b": "\xff"}\n{"c": 2}\n'
    rows = list(iter_jsonl(io.BytesIO(data)))
    assert [row.location for row in rows] == ["line 1", "line 3", "line 4", "line 5"]
    assert rows[0].value == {"a": 1} and rows[3].value == {"c": 2}
    assert rows[1].error.reason == "invalid_json" and "column 2" in str(rows[1].error)
    assert rows[2].error.reason == "not_utf8" and "0xff" in str(rows[2].error)


def test_first_char_skips_bom_and_blanks():
    assert first_char(io.BytesIO(b"\xef\xbb\xbf \n [1]")) == "["
    assert first_char(io.BytesIO(b'  {"a": 1}')) == "{"
    assert first_char(io.BytesIO(b" \n ")) == ""
    assert _array(b"[]") == [] and _array(b"  ") == []


LONE = '{"instruction": "emoji cut in half: \\ud83d", "output": "x"}'
PAIR = '{"instruction": "a whole emoji: \\ud83d\\ude00", "output": "x"}'
DEEP = "[" * 200_000 + "]" * 200_000


def test_lone_surrogate_and_deep_nesting_are_bad_lines_not_exceptions():
    nested = json.dumps({"instruction": "Q", "output": "A", "extra": json.loads("[" * 150 + "]" * 150)})
    text = "\n".join([PAIR, LONE, DEEP, '{"k": ["\\udc80"]}', nested, PAIR]) + "\n"
    rows = list(iter_jsonl(io.BytesIO(text.encode())))
    assert [row.error.reason if row.error else None for row in rows] == [
        None, "not_unicode", "too_deep", "not_unicode", "too_deep", None]
    assert rows[0].value["instruction"] == "a whole emoji: \U0001f600"
    assert "lone surrogate" in str(rows[1].error) and "\\ud83d" in str(rows[1].error)
    assert [row.location for row in rows[1:3]] == ["line 2", "line 3"]


@pytest.mark.parametrize("chunk", [7, 1 << 20])
def test_lone_surrogate_marks_only_its_array_element(monkeypatch, chunk):
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    rows = _array(f"[{PAIR},\n{LONE},\n{PAIR}]".encode())
    assert [row.error.reason if row.error else None for row in rows] == [None, "not_unicode", None]
    assert rows[1].location == "element 2 (line 2)"


def test_deeply_nested_array_element_stops_the_array_with_a_named_row():
    rows = _array(f"[{PAIR},\n{DEEP}, {PAIR}]".encode())
    assert rows[0].error is None and rows[1].error.reason == "too_deep" and len(rows) == 2
    assert rows[1].location == "element 2 (line 2)"
