"""Read the final content out of a teacher reply (a final marker, a JSON object, or the whole message); anything else
is a counted failure, never a guess."""

from __future__ import annotations

import json
from dataclasses import dataclass

from middo.refine.contract import FINAL_CLOSE, FINAL_OPEN, REPLY_FIELD


@dataclass(frozen=True)
class Parsed:
    """The final content, or why there is none (`no_marker`, `empty`)."""

    text: str | None
    failure: str | None


def extract_final(reply: str) -> Parsed:
    """The last `<final>...</final>` block (from the last open tag before the last close tag), stripped; a reply
    without one, or with only blanks in it, fails. Requests fence their data (`contract.fence`), so a block can only
    be the teacher's own, never data it echoed."""
    end = reply.rfind(FINAL_CLOSE)
    start = reply.rfind(FINAL_OPEN, 0, max(end, 0))
    if end < 0 or start < 0:
        return Parsed(None, "no_marker")
    text = reply[start + len(FINAL_OPEN) : end].strip()
    return Parsed(text, None) if text else Parsed(None, "empty")


def extract_json(reply: str) -> Parsed:
    """The `text` string of a reply that is one JSON object (blanks and a ```json fence around it allowed),
    stripped; else the final marker block (`extract_final`), else a failure `no_json`."""
    body = reply.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        loaded = json.loads(body, strict=False)
    except json.JSONDecodeError:
        loaded = None
    if isinstance(loaded, dict) and isinstance(loaded.get(REPLY_FIELD), str):
        text = loaded[REPLY_FIELD].strip()
        return Parsed(text, None) if text else Parsed(None, "empty")
    marked = extract_final(reply)
    return marked if marked.failure != "no_marker" else Parsed(None, "no_json")


def whole_reply(reply: str) -> Parsed:
    """The final marker block when the reply has one, else the whole reply stripped (empty fails)."""
    marked = extract_final(reply)
    if marked.failure != "no_marker":
        return marked
    text = reply.strip()
    return Parsed(text, None) if text else Parsed(None, "empty")


def read_reply(reply: str, phase: str, reply_format: str) -> Parsed:
    """The content of a reply of `phase` (`prompt` or `response`) under the resolved `refine.reply_format`."""
    if reply_format != "json":
        return extract_final(reply)
    return extract_json(reply) if phase == "prompt" else whole_reply(reply)
