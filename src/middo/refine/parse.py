"""Read the marked final content out of a teacher reply; anything else is a counted failure, never a guess."""

from __future__ import annotations

import re
from dataclasses import dataclass

from middo.refine.contract import FINAL_CLOSE, FINAL_OPEN

_FINAL = re.compile(re.escape(FINAL_OPEN) + r"(.*?)" + re.escape(FINAL_CLOSE), re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """The final content, or why there is none (`no_marker`, `empty`)."""

    text: str | None
    failure: str | None


def extract_final(reply: str) -> Parsed:
    """The last `<final>...</final>` block, stripped; a reply without one, or with only blanks in it, fails."""
    blocks = _FINAL.findall(reply)
    if not blocks:
        return Parsed(None, "no_marker")
    text = blocks[-1].strip()
    return Parsed(text, None) if text else Parsed(None, "empty")
