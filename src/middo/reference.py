"""The `reference` preset: the params overlay that reproduces the reference procedure (Word2VecT/Middo) wherever it
is not a bug.

`middo init --preset reference` applies it; `docs/presets/reference.yaml` is the same overlay with a comment per
value (a test keeps the two equal). docs/design.md, "middo's defaults beside the reference's", gives the reason for
each default that differs and the fixes the preset keeps: an unparseable rating is NaN, never 0; tables are joined
by id; a failed or unparseable rewrite keeps its parent.
"""

from __future__ import annotations

from typing import Any

HELP = "the reference procedure (Word2VecT/Middo) wherever it is not a bug; docs/presets/reference.yaml"
"""One line for `middo init --help`."""

REFERENCE: dict[str, dict[str, Any]] = {
    # diversity: mean raw cosine to the 2 nearest prompts, embedded as plain text without the chat template
    "cluster": {"k": 2, "center": False},
    "embed": {"pool": "raw"},
    # quality: the round model rates by generating; the first number of a reply is the rating
    "judge": {"mode": "generate", "parse": "first_number", "prompt_sees_response": False},
    # σ-rule with m = 1 for every signal; quality's σ is the sample one
    "select": {"mode": "sigma", "m_complexity": 1.0, "m_diversity": 1.0, "m_quality": 1.0, "quality_std": "sample"},
    # the teacher sees the prompt only, answers comprehensively, writes a child per flag, with 2 whole hints; the
    # reference checks no child
    "refine": {"show_response": False, "answer_style": "comprehensive", "hard_and_low_quality": "both",
               "max_hints": 2, "hint_chars": 0, "synth_per_sample": 1, "gate": False},
    "teacher": {"temperature": 1.0},
}
"""Section -> key -> value, the shape `render_params` takes."""
