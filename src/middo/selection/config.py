"""Params section `select`: how samples are flagged for refinement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from middo.config import check


@dataclass(frozen=True)
class SelectConfig:
    """Section `select`: the σ-rule multipliers, the budget fractions, and the random control's seed."""

    mode: Literal["sigma", "budget", "random"] = "sigma"
    """`sigma`: flag values beyond μ ± m·σ; `budget`: flag the worst fraction per signal; `random`: flag as many
    samples per signal as the σ-rule would (same m's), chosen uniformly at random (the equal-budget control arm)."""
    m_complexity: float = 1.0
    """σ multiplier of `hard`: loss_pre > μ_pre + m·σ_pre and loss_cur > μ_cur + m·σ_cur."""
    m_diversity: float = 1.0
    """σ multiplier of `sparse`: knn_sim < μ − m·σ."""
    m_quality: float = 1.0
    """σ multiplier of `low_quality`: quality < μ − m·σ (NaN ratings never flag)."""
    quality_std: Literal["population", "sample"] = "population"
    """σ of `quality`: `population` (ddof 0, as every other signal) or `sample` (ddof 1, the reference's choice for
    quality alone). The losses and knn_sim always use the population σ, as the reference does."""
    budget_complexity: float = 0.1
    """Mode `budget`: fraction of samples (with both losses) flagged `hard`, worst first."""
    budget_diversity: float = 0.1
    """Mode `budget`: fraction of samples (with a knn_sim) flagged `sparse`, lowest similarity first."""
    budget_quality: float = 0.1
    """Mode `budget`: fraction of samples (with a rating) flagged `low_quality`, lowest quality first."""
    seed: int = 0
    """Mode `random`: seed of the random choice (same seed, same flags)."""

    def __post_init__(self) -> None:
        for name in ("m_complexity", "m_diversity", "m_quality"):
            value = getattr(self, name)
            check(value >= 0, f"select.{name} = {value}; use 0 or more (1.0 flags values beyond one σ)")
        for name in ("budget_complexity", "budget_diversity", "budget_quality"):
            value = getattr(self, name)
            check(0 <= value <= 1, f"select.{name} = {value}; use a fraction in [0, 1] such as 0.1")

    def multiplier(self, signal: str) -> float:
        """The σ multiplier of `signal` (`complexity`, `diversity` or `quality`)."""
        return getattr(self, f"m_{signal}")

    def ddof(self, column: str) -> int:
        """Delta degrees of freedom of the σ of a signal column: 1 for `quality` under `quality_std: sample`."""
        return int(column == "quality" and self.quality_std == "sample")

    def budget(self, signal: str) -> float:
        """The budget fraction of `signal`."""
        return getattr(self, f"budget_{signal}")
