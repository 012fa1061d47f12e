"""Signal tables join by id with 1:1 validation, never by position."""

import polars as pl
import pytest

from middo.errors import JoinError
from middo.tables import join_by_id


def test_join_matches_rows_by_id_not_position():
    left = pl.DataFrame({"id": ["a", "b", "c"], "x": [1, 2, 3]})
    right = pl.DataFrame({"id": ["c", "a", "b"], "y": [30, 10, 20]})
    joined = join_by_id(left, right, "left", "right").sort("id")
    assert joined["y"].to_list() == [10, 20, 30]


def test_join_rejects_missing_and_duplicated_ids():
    left = pl.DataFrame({"id": ["a", "b"], "x": [1, 2]})
    with pytest.raises(JoinError, match="1 ids only in left"):
        join_by_id(left, pl.DataFrame({"id": ["a"], "y": [1]}), "left", "right")
    with pytest.raises(JoinError, match="not unique"):
        join_by_id(left, pl.DataFrame({"id": ["a", "a", "b"], "y": [1, 2, 3]}), "left", "right")
