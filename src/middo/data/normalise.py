"""Ingestion policy: conversations as people have them, and junk text, each case handled by a setting and counted.

Conversations (`conversations`):
- `normalise` (default): leading assistant turns are dropped (a scraped conversation that starts mid-way, the
  ShareGPT case: its first reply answers a prompt that is not there), then consecutive turns of one role are merged
  into one, joined by a blank line (a message sent in two parts). Both are counted by reason and named in the
  sample's `meta["_repairs"]`. A conversation with assistant turns only is a bad row (`no_user_turn`).
- `strict`: no repair; roles out of order make the row a bad row, as `on_error` says.

Junk that passes a plain `strip()`:
- `empty_text`: a conversation without turns, or a turn with no visible text once whitespace and format characters
  (Unicode category Cf: U+200B zero-width space, U+FEFF, U+200E, ...) are removed. `drop` (default) drops the row and
  counts it in both `on_error` modes, as a duplicate is; `bad_row` makes it a bad row that `on_error` fails or skips.
- `special_tokens`: text holding a literal special token of a common chat template (`<|endoftext|>`, `<|im_start|>`,
  `<s>`, ...), which a tokenizer would read as the control token itself. `escape` (default) puts a U+200B after its
  `<`, so the text reads the same and tokenises as plain text; `drop` drops the row (counted); `keep` leaves it as it
  is (counted): the chat template's tokenizer will then turn it into the control token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from middo.data.formats import TURN_FIELDS, is_blank
from middo.data.jsonstream import BadRow
from middo.errors import ConfigError

CONVERSATIONS = ("normalise", "strict")
EMPTY_TEXT = ("drop", "bad_row")
SPECIAL_TOKENS = ("escape", "drop", "keep")
TURN_JOIN = "\n\n"
"""Between the contents of consecutive same-role turns merged into one."""
ESCAPE = "\u200b"
"""Inserted after the `<` of a literal special token by `special_tokens: escape`."""
REPAIRS = "_repairs"
"""Key of `meta` naming the repairs made to a sample's messages at ingestion."""
SPECIAL_TOKEN = re.compile(
    r"<[|｜][^|｜<>\s]{1,48}[|｜]>"  # <|endoftext|>, <|im_start|>, <|eot_id|>, ..., DeepSeek's <｜...｜>
    r"|</?s>|<(?:unk|pad|bos|eos|start_of_turn|end_of_turn)>"  # Llama 2 / Mistral, Gemma
)


@dataclass(frozen=True)
class IngestPolicy:
    """How ingestion repairs conversations and handles junk text (see the module docstring)."""

    conversations: str = "normalise"
    empty_text: str = "drop"
    special_tokens: str = "escape"

    def __post_init__(self) -> None:
        for name, choices in (("conversations", CONVERSATIONS), ("empty_text", EMPTY_TEXT),
                              ("special_tokens", SPECIAL_TOKENS)):
            if getattr(self, name) not in choices:
                raise ConfigError(f"{name} {getattr(self, name)!r} is unknown; choose one of {', '.join(choices)}")


class Dropped(BadRow):
    """A row the policy drops: counted under `dropped` whatever `on_error` says, like a duplicate."""


@dataclass
class Normalised:
    """A row's messages and meta after the policy, the repairs made and whether it held special-token text."""

    messages: list[dict]
    meta: dict
    repairs: list[str] = field(default_factory=list)
    special_tokens: bool = False


def escape_special_tokens(text: str) -> str:
    """`text` with a U+200B after the `<` of every literal special token."""
    return SPECIAL_TOKEN.sub(lambda match: match[0][0] + ESCAPE + match[0][1:], text)


def apply_policy(messages: list[dict], meta: dict, policy: IngestPolicy) -> Normalised:
    """Drop leading assistant turns, check for empty text, merge same-role turns, handle special tokens."""
    if not messages:
        _empty(policy, "empty_conversation", "the conversation has no turns")
    turns = list(enumerate(messages))  # (position as read, message)
    repairs = []
    if policy.conversations == "normalise":
        turns, dropped = _drop_leading_assistant(turns)
        repairs += ["leading_assistant_dropped"] if dropped else []
    for position, message in turns:
        if is_blank(message["content"]):
            reason = "empty_response" if message["role"] == "assistant" else "empty_turn"
            _empty(policy, reason, f"turn {position + 1} ({message['role']}) has no visible text")
    groups = _merge_groups(turns) if policy.conversations == "normalise" else [[turn] for turn in turns]
    repairs += ["same_role_merged"] if len(groups) < len(turns) else []
    merged = [{"role": group[0][1]["role"], "content": TURN_JOIN.join(m["content"] for _, m in group)}
              for group in groups]
    found = find_special_token(merged)
    if found and policy.special_tokens == "drop":
        raise Dropped("special_tokens", f"turn {found[0]} holds {found[1]!r}, a special token of common chat "
                                        "templates; data.special_tokens: drop drops such rows (escape keeps them)")
    if found and policy.special_tokens == "escape":
        merged = [{**message, "content": escape_special_tokens(message["content"])} for message in merged]
        repairs.append("special_tokens_escaped")
    meta = _rekey_turn_fields(meta, [[position for position, _ in group] for group in groups])
    if repairs:
        meta[REPAIRS] = repairs
    return Normalised(merged, meta, repairs, found is not None)


def _empty(policy: IngestPolicy, reason: str, what: str) -> None:
    if policy.empty_text == "drop":
        raise Dropped(reason, f"{what} (whitespace and format characters such as U+200B do not count); "
                              "data.empty_text: drop drops such rows")
    raise BadRow(reason, f"{what} (whitespace and format characters such as U+200B do not count); write its text "
                         "or drop the row")


def _drop_leading_assistant(turns: list[tuple[int, dict]]) -> tuple[list[tuple[int, dict]], int]:
    start = 1 if turns[0][1]["role"] == "system" else 0
    end = start
    while end < len(turns) and turns[end][1]["role"] == "assistant":
        end += 1
    if end > start and not any(message["role"] == "user" for _, message in turns[end:]):
        raise BadRow("no_user_turn", "the conversation has assistant turns but no user turn, so there is no prompt; "
                                     "write the prompt or drop the row")
    return turns[:start] + turns[end:], end - start


def _merge_groups(turns: list[tuple[int, dict]]) -> list[list[tuple[int, dict]]]:
    groups: list[list[tuple[int, dict]]] = []
    for turn in turns:
        if groups and groups[-1][0][1]["role"] == turn[1]["role"]:
            groups[-1].append(turn)
        else:
            groups.append([turn])
    return groups


def find_special_token(messages: list[dict]) -> tuple[int, str] | None:
    """(turn number, token) of the first literal special token in `messages`, or None."""
    for number, message in enumerate(messages, start=1):
        match = SPECIAL_TOKEN.search(message["content"])
        if match is not None:
            return number, match[0]
    return None


def _rekey_turn_fields(meta: dict, groups: list[list[int]]) -> dict:
    """`meta` with its per-turn fields keyed by the turns' new positions (a merged turn keeps the first's on a clash;
    the fields of dropped turns go with them)."""
    fields = meta.get(TURN_FIELDS)
    if not fields:
        return dict(meta)
    moved: dict[str, dict] = {}
    for new, positions in enumerate(groups):
        for position in positions:
            extra = fields.get(str(position))
            if extra:
                moved[str(new)] = {**extra, **moved.get(str(new), {})}
    rest = {key: value for key, value in meta.items() if key != TURN_FIELDS}
    return {**rest, TURN_FIELDS: moved} if moved else rest
