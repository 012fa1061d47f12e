"""The unrolled DVC pipeline: `LoopConfig` (`loop`), `build_pipeline(rounds, params)` (pure), unroll, scaffold."""

from __future__ import annotations

from typing import Any

__all__ = ["LoopConfig", "build_pipeline"]


def __getattr__(name: str) -> Any:
    # Lazy: `build` imports every stage's config class, which `middo.pipeline.config` users do not need.
    if name == "build_pipeline":
        from middo.pipeline.build import build_pipeline

        return build_pipeline
    if name == "LoopConfig":
        from middo.pipeline.config import LoopConfig

        return LoopConfig
    raise AttributeError(f"module 'middo.pipeline' has no attribute {name!r}")
