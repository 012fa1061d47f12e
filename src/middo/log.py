"""Human logs (stderr) and small metric JSON files (declared as DVC metrics)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

LOGGER_NAME = "middo"


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """A logger under the `middo` namespace, configured once to print to stderr."""
    root = logging.getLogger(LOGGER_NAME)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    return logging.getLogger(name)


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    """Write metrics as pretty JSON; NaN/inf become null so the file stays valid JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value
