"""What `middo diff` prints: counts, bounded id lists, flag changes and examples as text, or one JSON document."""

from __future__ import annotations

from typing import Any

from middo.report.compare import Comparison, FlagChange
from middo.report.diff import Change
from middo.report.examples import format_example, lineage_examples

LIMIT = 20
"""Ids listed per category by default (`--limit 0` lists all): the summary lines come first either way."""


def diff_lines(comparison: Comparison, names: tuple[str, str], limit: int, show: int) -> list[str]:
    """Text lines: the summary first (header, counts, per op, flags changed), then at most `limit` ids per category
    (0: all), then examples."""
    diff = comparison.diff
    lines = [f"{names[0]} ({comparison.before.height} samples) -> {names[1]} ({comparison.after.height} samples)"]
    lines.append("  ".join(f"{name}: {count}" for name, count in diff.counts().items()))
    lines += [f"  {name} by op: {_ops(counts)}" for name, counts in diff.by_op().items() if counts]
    if comparison.flag_changes is not None:
        lines.append(f"flags changed: {len(comparison.flag_changes)}")
    lines += _bounded([f"replaced {c.parent} -> {c.id} ({c.op})" for c in diff.replaced], limit)
    lines += _bounded([f"added    {c.id} ({c.op}, parent {c.parent})" for c in diff.added], limit)
    lines += _bounded([f"reverted {c.id} -> {c.parent} ({c.op} not made here)" for c in diff.reverted], limit)
    lines += _bounded([f"removed  {sample_id}" for sample_id in diff.removed], limit)
    if comparison.flag_changes is not None:
        lines += _bounded([_flag_line(change) for change in comparison.flag_changes], limit)
    changes = [*diff.replaced, *diff.added]
    for op in sorted({change.op for change in changes} if show else ()):
        picked = [change for change in changes if change.op == op]
        examples = lineage_examples(comparison.before, picked, comparison.after, show)
        lines += ["\n" + format_example(example) for example in examples]
    return lines


def diff_document(comparison: Comparison, sides: tuple[dict, dict], limit: int) -> dict[str, Any]:
    """The same as one JSON-able dict; each id list holds at most `limit` entries (0: all), `truncated` says so."""
    diff = comparison.diff
    lists = {
        "kept": diff.kept,
        "replaced": [_change(c) for c in diff.replaced],
        "added": [_change(c) for c in diff.added],
        "reverted": [_change(c) for c in diff.reverted],
        "removed": diff.removed,
    }
    document: dict[str, Any] = {
        "before": {**sides[0], "samples": comparison.before.height},
        "after": {**sides[1], "samples": comparison.after.height},
        "counts": diff.counts(),
        "by_op": diff.by_op(),
        **{name: _head(items, limit) for name, items in lists.items()},
        "truncated": any(limit and len(items) > limit for items in lists.values()),
    }
    if comparison.flag_changes is not None:
        changes = [{"id": c.id, "before": c.before, "after": c.after} for c in comparison.flag_changes]
        document["flags_changed"] = {"count": len(changes), "samples": _head(changes, limit)}
        document["truncated"] = document["truncated"] or bool(limit and len(changes) > limit)
    return document


def _ops(counts: dict[str, int]) -> str:
    return ", ".join(f"{op} {count}" for op, count in counts.items())


def _bounded(lines: list[str], limit: int) -> list[str]:
    if not limit or len(lines) <= limit:
        return lines
    return [*lines[:limit], f"  ... and {len(lines) - limit} more (--limit 0 lists all)"]


def _head(items: list, limit: int) -> list:
    return items if not limit else items[:limit]


def _change(change: Change) -> dict[str, str | None]:
    return {"id": change.id, "parent": change.parent, "op": change.op}


def _flag_line(change: FlagChange) -> str:
    def shown(flags: tuple[str, ...] | None) -> str:
        return "(not flagged here)" if flags is None else ",".join(flags) or "none"

    return f"flags    {change.id}: {shown(change.before)} -> {shown(change.after)}"
