"""Row formats (Alpaca, ShareGPT, OpenAI chat): detection, role normalisation, and row -> (messages, meta).

Every field of a row that does not become a message is kept in `meta`; extra keys of single turns (e.g. OpenAI's
`weight` or `name`) are kept under `meta["_turn_fields"]`, keyed by the turn's position.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from middo.data.jsonstream import BadRow

FORMATS = ("alpaca", "sharegpt", "openai")
TURN_FIELDS = "_turn_fields"
ALPACA_SEPARATOR = "\n\n"  # between an Alpaca `instruction` and its `input` in the user turn

_ROLE_NAMES = {
    "system": ("system", "sys"),
    "user": ("user", "human", "usr", "prompter", "prompt", "question", "instruction"),
    "assistant": ("assistant", "gpt", "bot", "chatgpt", "model", "ai", "bard", "bing", "gpt4", "claude", "response"),
}
ROLE_ALIASES = {alias: role for role, aliases in _ROLE_NAMES.items() for alias in aliases}
_FORMAT_KEYS = {"alpaca": ("instruction", "input", "output"), "sharegpt": ("conversations",), "openai": ("messages",)}
_ALPACA_KEYS = ("instruction", "input", "output", "system", "history")


def detect_format(row: Any) -> str | None:
    """The format a row looks like, by its keys; None if it has none of them."""
    if not isinstance(row, dict):
        return None
    for name in ("openai", "sharegpt", "alpaca"):
        if any(key in row for key in _FORMAT_KEYS[name]):
            return name
    return None


def normalise_role(name: Any) -> str:
    """Map `human`/`gpt`/`bot`/`chatgpt`/`model`/... to `system`, `user` or `assistant`."""
    if not isinstance(name, str):
        raise BadRow("wrong_type", f"a turn's role is {type(name).__name__} {name!r}; it must be a string")
    role = ROLE_ALIASES.get(name.strip().lower())
    if role is None:
        raise BadRow(
            "unknown_role",
            f"unknown role {name!r}; use one of system/user/assistant (or human/gpt), or drop the row",
        )
    return role


def row_to_messages(row: Any, fmt: str) -> tuple[list[dict], dict]:
    """Convert one row of format `fmt` into checked messages and the leftover fields (meta)."""
    messages, meta = row_to_turns(row, fmt)
    check_messages(messages)
    return messages, meta


def row_to_turns(row: Any, fmt: str) -> tuple[list[dict], dict]:
    """Convert one row of format `fmt` into messages as written (roles unchecked) and the leftover fields (meta)."""
    if not isinstance(row, dict):
        raise BadRow("wrong_type", f"the row is a JSON {type(row).__name__}, not an object; each row must be {{...}}")
    if fmt == "alpaca":
        messages, meta = _from_alpaca(row)
    else:
        key = "conversations" if fmt == "sharegpt" else "messages"
        messages, meta = _from_turns(row, key)
    return messages, meta


def is_blank(text: str) -> bool:
    """True when `text` has nothing but whitespace and format characters (category Cf, e.g. U+200B)."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


def check_messages(messages: list[dict]) -> None:
    """Roles in order (optional system first, then user/assistant alternating), no empty turn, assistant last."""
    if not messages:
        raise BadRow("empty_conversation", "the conversation has no turns; drop the row")
    body = messages[1:] if messages[0]["role"] == "system" else messages
    for index, message in enumerate(body):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            turn = index + len(messages) - len(body) + 1
            raise BadRow(
                "roles_out_of_order",
                f"turn {turn} is {message['role']!r} where {expected!r} was expected; a conversation is an optional "
                "system turn, then user and assistant turns alternating, starting with user; fix or drop the row",
            )
    if not body or body[-1]["role"] != "assistant":
        raise BadRow(
            "no_final_assistant",
            "the conversation does not end with an assistant turn, so it has no response to learn; "
            "add the response or drop the last user turn",
        )
    for index, message in enumerate(messages, start=1):
        if is_blank(message["content"]):
            reason = "empty_response" if message["role"] == "assistant" else "empty_turn"
            raise BadRow(reason, f"turn {index} ({message['role']}) is empty; write its text or drop the row")


def _from_alpaca(row: dict) -> tuple[list[dict], dict]:
    instruction = _text(row, "instruction", "missing_instruction", "the prompt")
    response = _text(row, "output", "missing_response", "the response")
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise BadRow("wrong_type", f"`input` is {type(extra).__name__}; it must be a string (or absent)")
    messages = []
    system = row.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise BadRow("wrong_type", f"`system` is {type(system).__name__}; it must be a string (or absent)")
        if system.strip():
            messages.append({"role": "system", "content": system})
    for pair in _history(row.get("history")):
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = instruction + ALPACA_SEPARATOR + extra if extra and extra.strip() else instruction
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return messages, {key: value for key, value in row.items() if key not in _ALPACA_KEYS}


def _text(row: dict, key: str, reason: str, what: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRow(reason, f"`{key}` ({what}) is missing or empty; fill it in or drop the row")
    if not isinstance(value, str):
        raise BadRow("wrong_type", f"`{key}` is {type(value).__name__}; it must be a string")
    return value


def _history(history: Any) -> list[tuple[str, str]]:
    if history is None:
        return []
    fix = "`history` must be a list of [prompt, response] pairs of strings"
    if not isinstance(history, list):
        raise BadRow("wrong_type", f"`history` is {type(history).__name__}; {fix}")
    for pair in history:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            raise BadRow("wrong_type", f"`history` holds {pair!r}; {fix}")
    return [tuple(pair) for pair in history]


def _from_turns(row: dict, key: str) -> tuple[list[dict], dict]:
    turns = row.get(key)
    if turns is None:
        raise BadRow("missing_field", f"`{key}` is missing; every row of this file needs it (or pass --format)")
    if not isinstance(turns, list):
        raise BadRow("wrong_type", f"`{key}` is {type(turns).__name__}; it must be a list of turns")
    messages, turn_fields = [], {}
    system = row.get("system") if key == "conversations" else None
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": system})
    elif system is not None and not isinstance(system, str):
        raise BadRow("wrong_type", f"`system` is {type(system).__name__}; it must be a string (or absent)")
    for turn in turns:
        message, extra = _turn(turn)
        if extra:
            turn_fields[str(len(messages))] = extra
        messages.append(message)
    used = {key, "system"} if key == "conversations" else {key}
    meta = {name: value for name, value in row.items() if name not in used}
    if turn_fields:
        meta[TURN_FIELDS] = turn_fields
    return messages, meta


def _turn(turn: Any) -> tuple[dict, dict]:
    if not isinstance(turn, dict):
        raise BadRow("wrong_type", f"a turn is {type(turn).__name__} {str(turn)[:40]!r}; each turn must be an object")
    role_key = "role" if "role" in turn else "from"
    content_key = "content" if "content" in turn else "value"
    if role_key not in turn or content_key not in turn:
        raise BadRow(
            "missing_field",
            f"a turn has keys {sorted(turn)}; each turn needs role/content (OpenAI) or from/value (ShareGPT)",
        )
    content = _content_text(turn[content_key])
    # None-valued keys are dropped: Parquet/`datasets` rows carry every struct field of the column, mostly as null
    extra = {name: value for name, value in turn.items() if name not in (role_key, content_key) and value is not None}
    return {"role": normalise_role(turn[role_key]), "content": content}, extra


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        raise BadRow("empty_turn", "a turn has no content (null); write its text or drop the row")
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        return "".join(str(part.get("text", "")) for part in content)  # OpenAI content parts, text only
    raise BadRow("wrong_type", f"a turn's content is {type(content).__name__}; it must be a string")
