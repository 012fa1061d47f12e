"""Streaming JSON readers: JSON Lines and JSON arrays, element by element, with bounded memory.

A JSON array is decoded incrementally with `json.JSONDecoder.raw_decode` over a buffer refilled from the file, so a
file cut off mid-way (a truncated download) still yields every complete element before the cut. Bytes are decoded
with `surrogateescape`, so non-UTF-8 bytes mark only the element that holds them as bad. A value that is valid JSON
but not valid text (a lone surrogate escape such as half an emoji, `"\\ud83d"`) or nested deeper than `MAX_DEPTH`
is one bad row too, never an exception later on.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

BOM = "\ufeff"
CHUNK_CHARS = 1 << 20
LOOKAHEAD = 1024  # a parse error this far before the buffer end is in the text, not caused by the cut
_SPACE = re.compile(r"[ \t\n\r]*")
_BAD_BYTE = re.compile("[\udc80-\udcff]")
MAX_DEPTH = 100  # nesting levels of one row; a chat row needs 4, and deeper values crash encoders that recurse
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a lone surrogate can get into decoded JSON text
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadRow(Exception):
    """One input row cannot become a sample: `reason` is a short slug for counts, the message says how to fix it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class RawRow:
    """One element read from an input: where it is (`location`, e.g. "line 7"), its value or why it failed."""

    location: str
    value: Any = None
    error: BadRow | None = None


def iter_jsonl(handle: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> Iterator[RawRow]:
    """Yield one RawRow per non-blank line of a JSON Lines file (a leading UTF-8 BOM is accepted)."""
    for number, raw in enumerate(handle, start=1):
        if on_bytes:
            on_bytes(len(raw))
        location = f"line {number}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRow(location, error=_not_utf8(raw[exc.start : exc.start + 1], exc.start + 1))
            continue
        if number == 1:
            text = text.removeprefix(BOM)
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(location, error=BadRow("invalid_json", f"not valid JSON ({exc.msg} at column {exc.colno}); "
                                                "fix or remove the line"))
            continue
        except RecursionError:
            yield RawRow(location, error=_too_deep())
            continue
        bad = check_value(value, text)
        yield RawRow(location, value=value) if bad is None else RawRow(location, error=bad)


def check_value(value: Any, text: str, start: int = 0, end: int | None = None) -> BadRow | None:
    """Why a decoded JSON value cannot be a row (a lone surrogate, nesting beyond `MAX_DEPTH`), or None.

    `text[start:end]` is the JSON it was decoded from: the value is walked only when that text could hold either.
    """
    end = len(text) if end is None else end
    escaped = _SURROGATE_ESCAPE.search(text, start, end) is not None
    if not escaped and text.count("[", start, end) + text.count("{", start, end) <= MAX_DEPTH:
        return None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return _too_deep()
        if isinstance(item, str):
            if escaped and _SURROGATE.search(item):
                return _not_unicode(item)
        elif isinstance(item, dict):
            stack += [(key, depth) for key in item] + [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]
    return None


def iter_json_array(handle: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> Iterator[RawRow]:
    """Yield one RawRow per element of a top-level JSON array, stopping with an error row where the array breaks."""
    yield from _ArrayReader(handle, on_bytes).rows()


def first_char(handle: BinaryIO) -> str:
    """The first non-blank character of a file (after a BOM), "" when blank; the handle is rewound."""
    head = handle.read(4096)
    while head and not head.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n"):
        more = handle.read(4096)
        if not more:
            break
        head += more
    handle.seek(0)
    text = head.decode("utf-8", errors="replace").removeprefix(BOM).lstrip()
    return text[:1]


class _ArrayReader:
    """Incremental scanner over `[ value, value, ... ]` kept in a sliding text buffer."""

    def __init__(self, handle: BinaryIO, on_bytes: Callable[[int], None] | None) -> None:
        self.handle, self.on_bytes = handle, on_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.json = json.JSONDecoder()
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False

    def rows(self) -> Iterator[RawRow]:
        self._fill()
        self.buf = self.buf.removeprefix(BOM)
        if not self._skip_space() or self.buf[self.pos] != "[":
            return  # blank file, or no array: the caller checks the first character before choosing this reader
        self._advance(self.pos + 1)
        index = 0
        while True:
            if not self._skip_space():
                yield RawRow(f"element {index + 1} (line {self.line})", error=_cut_off(index))
                return
            if self.buf[self.pos] == "]":
                return
            if index and self.buf[self.pos] == ",":
                self._advance(self.pos + 1)
                if not self._skip_space():
                    yield RawRow(f"element {index + 1} (line {self.line})", error=_cut_off(index))
                    return
            index += 1
            location = f"element {index} (line {self.line})"
            value, error = self._decode_one(index)
            if error is not None:
                yield RawRow(location, error=error)
                return
            yield RawRow(location, error=value) if isinstance(value, BadRow) else RawRow(location, value=value)

    def _decode_one(self, index: int) -> tuple[Any, BadRow | None]:
        """(the element, or the BadRow of an element that is bad on its own; None) or (None, why the array stops)."""
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except RecursionError:
                return None, _too_deep(" (elements after it in this array are not read)")
            except json.JSONDecodeError as exc:
                if self.eof:
                    truncated = exc.msg.startswith("Unterminated") or exc.pos >= len(self.buf.rstrip())
                    return None, _cut_off(index - 1) if truncated else self._syntax_error(exc)
                if not exc.msg.startswith("Unterminated") and len(self.buf) - exc.pos > LOOKAHEAD:
                    return None, self._syntax_error(exc)  # failed well before the buffer end: more text cannot help
                self._fill()
                continue
            if end == len(self.buf) and not self.eof:
                self._fill()  # a number at the buffer end may continue in the next chunk
                continue
            bad = _not_utf8() if _BAD_BYTE.search(self.buf, self.pos, end) else check_value(value, self.buf,
                                                                                             self.pos, end)
            self._advance(end)
            return bad or value, None  # a bad element is one bad row; the array goes on after it

    def _syntax_error(self, exc: json.JSONDecodeError) -> BadRow:
        line = self.line + self.buf.count("\n", self.pos, exc.pos)
        return BadRow(
            "invalid_json",
            f"not valid JSON ({exc.msg} at line {line} of the file); fix the JSON syntax there "
            "(elements after it in this array are not read)",
        )

    def _skip_space(self) -> bool:
        """Move past blanks; False when the file ends first."""
        while True:
            end = _SPACE.match(self.buf, self.pos).end()
            self._advance(end)
            if self.pos < len(self.buf):
                return True
            if self.eof:
                return False
            self._fill()

    def _advance(self, end: int) -> None:
        self.line += self.buf.count("\n", self.pos, end)
        self.pos = end

    def _fill(self) -> None:
        raw = self.handle.read(CHUNK_CHARS)
        if self.on_bytes and raw:
            self.on_bytes(len(raw))
        self.eof = not raw
        text = self.decoder.decode(raw, final=self.eof)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0


def _cut_off(complete: int) -> BadRow:
    return BadRow(
        "truncated_json",
        f"the file ends inside this element, after {complete} complete elements (a truncated download or copy?); "
        "get the complete file, or pass --on-error skip to keep the complete elements before the cut",
    )


def _not_utf8(byte: bytes = b"", column: int | None = None) -> BadRow:
    at = f" (byte 0x{byte.hex()} at byte {column})" if byte else ""
    return BadRow("not_utf8", f"text is not UTF-8{at}; re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")


def _not_unicode(text: str) -> BadRow:
    at = _SURROGATE.search(text).start()
    return BadRow("not_unicode", f"text holds a lone surrogate escape (\\u{ord(text[at]):04x} after "
                  f"{text[max(0, at - 20):at]!r}), half of a character cut in two; repair or remove the text there")


def _too_deep(after: str = "") -> BadRow:
    return BadRow("too_deep", f"the value is nested more than {MAX_DEPTH} levels deep, far beyond any chat row; "
                  f"fix or remove it{after}")
