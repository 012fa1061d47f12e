"""Signal tables join by id with 1:1 validation, never by position."""

import polars as pl
import pytest

from middo.errors import InputError, JoinError
from middo.tables import join_by_id, read_table, write_table


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


def test_read_table_round_trips_and_a_missing_file_names_the_stage_that_writes_it(tmp_path):
    frame = pl.DataFrame({"id": ["a", "b"], "knn_sim": [0.5, 0.25]})
    path = write_table(frame, tmp_path / "r1" / "knn.parquet")
    assert read_table(path, "cluster").equals(frame)
    with pytest.raises(InputError, match=r"flags\.parquet: no such table; the select stage writes it") as caught:
        read_table(tmp_path / "r1" / "flags.parquet", "select")
    assert "dvc repro select-<round>" in str(caught.value)
