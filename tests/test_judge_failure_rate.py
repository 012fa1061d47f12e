"""The judge stage's failure-rate policy: NaN ratings are kept up to `judge.max_failure_rate`; above it the stage
fails with the count and the reasons and writes nothing (a round without a quality signal is not recorded as done)."""

from __future__ import annotations

import json

import polars as pl
import yaml
from conftest import stage_error
from judge_helpers import make_samples

from middo.data.schema import SAMPLE_SCHEMA, write_samples
from middo.teacher.server import ChatServer, Reply
from stages import judge as judge_stage


def setup(tmp_path, base_url: str, **judge) -> list[str]:
    samples = make_samples(4)
    frame = pl.DataFrame([{**s, "source": "t", "round": 0, "parent": None, "op": "seed", "meta": "{}"}
                          for s in samples]).cast(dict(SAMPLE_SCHEMA))
    write_samples(frame, tmp_path / "d.parquet")
    params = {"judge": {"mode": "openai", **judge}, "model": {"base": "unused"},
              "teacher": {"base_url": base_url, "model": "m", "api_key_env": "MIDDO_UNSET_KEY", "max_retries": 0,
                          "cache_path": str(tmp_path / "cache.sqlite")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    out = tmp_path / "out"
    return ["--data", str(tmp_path / "d.parquet"), "--model", "unused", "--output", str(out / "ratings.parquet"),
            "--metrics", str(out / "judge.json"), "--plot", str(out / "hist.csv"), "--params",
            str(tmp_path / "params.yaml")]


def test_a_dead_judge_endpoint_fails_the_stage(tmp_path, capsys):
    server = ChatServer(lambda body: "7").start()
    url = server.base_url
    server.stop()
    message = stage_error(capsys, judge_stage.main, setup(tmp_path, url))
    assert "24 of 24 ratings (100%) could not be read" in message and "connection 24" in message
    assert "judge.max_failure_rate = 0.2" in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_nan_ratings_within_the_rate_are_kept_and_counted(tmp_path, capsys):
    def handler(body: dict) -> Reply:
        text = json.dumps(body)
        return Reply("no idea", status=200) if "cat sees a dog 0." in text else Reply(str(len(text) % 11))

    with ChatServer(handler) as server:
        args = setup(tmp_path, server.base_url)
        assert "6 of 24 ratings" in stage_error(capsys, judge_stage.main, args)  # 25% > 20%
        judge_stage.main(setup(tmp_path, server.base_url, max_failure_rate=0.25))
    metrics = json.loads((tmp_path / "out" / "judge.json").read_text())
    assert metrics["nan_ratings"] == 6 and metrics["parse_failures"] == 6
