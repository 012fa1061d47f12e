"""Refine stage: teacher operations on flagged samples (simplify, improve, synthesize), the gate, merge, lineage."""

from middo.refine.config import RefineConfig

__all__ = ["RefineConfig"]
