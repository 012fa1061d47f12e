"""middo: model-informed closed-loop refinement of SFT data."""

__version__ = "0.1.0"
