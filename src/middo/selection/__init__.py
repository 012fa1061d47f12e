"""Select stage: flag hard, sparse and low-quality samples by the σ-rule, a budget, or an equal-count random draw."""

from middo.selection.config import SelectConfig
from middo.selection.rules import SIGNALS, Selection, select_flags
from middo.selection.run import run_select

__all__ = ["SIGNALS", "SelectConfig", "Selection", "run_select", "select_flags"]
