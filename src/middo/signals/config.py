"""Params sections of the three signal stages: `score`, `cluster`, `judge`."""

from __future__ import annotations
