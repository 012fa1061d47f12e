"""What earlier rounds tried on a kept sample, read back from its meta (written by `middo.refine.merge.kept_meta`).

A parent that stays in D(r) records its round's attempts under `meta.refine.attempts`. When a later round works on
it again, the teacher is told what became of those attempts, so it writes something else: a failed attempt is not
simply repeated (and, the request being different, not served again from the request cache).
"""

from __future__ import annotations

from middo.data.schema import sample_meta

REASON_CHARS = 240


def earlier_notes(meta: str | None, op: str, sample_id: str = "?") -> tuple[str, ...]:
    """One note per earlier attempt of `op` recorded in `meta` (a sample's meta JSON), oldest first; a meta that is
    not a JSON object is an error naming the sample."""
    record = sample_meta(meta, sample_id).get("refine")
    record = record if isinstance(record, dict) else {}
    attempts = record.get("attempts") if isinstance(record.get("attempts"), list) else []
    notes = []
    for attempt in attempts:
        if isinstance(attempt, dict) and attempt.get("op") == op:
            notes.append(_note(record.get("round"), attempt))
    return tuple(notes)


def _note(round_number, attempt: dict) -> str:
    where = f"In round {round_number}" if isinstance(round_number, int) else "Earlier"
    if attempt.get("outcome") == "accepted":
        return f"{where} the {attempt['op']} attempt on this sample was accepted as a new sample."
    reason = str(attempt.get("reason") or attempt.get("outcome") or "unknown")[:REASON_CHARS]
    return f"{where} the {attempt['op']} attempt on this sample was not used: {reason}."
