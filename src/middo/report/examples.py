"""Before/after pairs of refine operations, found through the `parent` links of a dataset."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from middo.data.schema import prompt_messages, response_text
from middo.report.diff import Change


@dataclass(frozen=True)
class Example:
    """One operation: the parent sample and the child it produced."""

    op: str
    parent_id: str
    child_id: str
    before: tuple[str, str]
    """(prompt, response) of the parent."""
    after: tuple[str, str]
    """(prompt, response) of the child."""


def prompt_response(messages: list[dict]) -> tuple[str, str]:
    """The prompt (turns before the last assistant turn, role-tagged when there are several) and the response."""
    turns = prompt_messages(messages)
    if len(turns) == 1:
        prompt = turns[0]["content"]
    else:
        prompt = "\n".join(f"[{turn['role']}] {turn['content']}" for turn in turns)
    return prompt, response_text(messages)


def lineage_examples(
    parents: pl.DataFrame, children: Iterable[Change], frame: pl.DataFrame, limit: int
) -> list[Example]:
    """Up to `limit` examples for `children` (rows of `frame`) whose parent is a row of `parents`."""
    by_id = {row["id"]: row["messages"] for row in parents.select("id", "messages").iter_rows(named=True)}
    child_rows = {row["id"]: row["messages"] for row in frame.select("id", "messages").iter_rows(named=True)}
    examples = []
    for change in children:
        if len(examples) >= limit:
            break
        if change.parent in by_id and change.id in child_rows:
            before, after = prompt_response(by_id[change.parent]), prompt_response(child_rows[change.id])
            examples.append(Example(change.op, change.parent, change.id, before, after))
    return examples


def format_example(example: Example, width: int = 100, max_chars: int = 400) -> str:
    """A plain-text block showing the parent and the child of one operation."""
    lines = [f"{example.op}: {example.parent_id} -> {example.child_id}"]
    for label, (prompt, response) in (("before", example.before), ("after", example.after)):
        for part, text in (("prompt", prompt), ("response", response)):
            shown = text if len(text) <= max_chars else text[:max_chars] + " [...]"
            wrapped = textwrap.fill(shown, width=width, initial_indent="    ", subsequent_indent="    ")
            lines.append(f"  {label} {part}:\n{wrapped}")
    return "\n".join(lines)
