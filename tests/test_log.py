"""Metrics files stay valid JSON."""

import json
import math

import numpy as np

from middo.log import write_metrics


def test_nan_and_numpy_values_become_valid_json(tmp_path):
    path = write_metrics({"a": math.nan, "b": np.float32(1.5), "c": [np.int64(2), math.inf]}, tmp_path / "m.json")
    assert json.loads(path.read_text()) == {"a": None, "b": 1.5, "c": [2, None]}
