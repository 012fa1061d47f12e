"""The `data` params section and the prepare stage end to end."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import stage_error

from middo.config import from_dict, load_params, section
from middo.data.config import DataConfig
from middo.data.schema import read_samples
from middo.errors import ConfigError
from stages import prepare as prepare_stage

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def test_data_config_reads_a_list_or_a_path_and_rejects_bad_values():
    with pytest.raises(ConfigError, match="data.seed is required"):
        section(DataConfig, {}, "data")
    config = from_dict(DataConfig, {"seed": ["a.jsonl", "b.json"], "eval": "e.jsonl", "on_error": "skip"}, "data")
    assert config.seed_inputs == ("a.jsonl", "b.json") and config.on_error == "skip"
    with pytest.raises(ConfigError, match="choose one of"):
        from_dict(DataConfig, {"seed": "s", "eval": "e", "on_error": "ignore"}, "data")
    with pytest.raises(ConfigError, match="data.seed is empty"):
        from_dict(DataConfig, {"seed": "", "eval": "e"}, "data")
    with pytest.raises(ConfigError, match="did you mean data.format"):
        from_dict(DataConfig, {"formt": "alpaca"}, "data")


def test_shipped_params_has_a_valid_data_section():
    params_path = Path(__file__).resolve().parents[1] / "params.yaml"
    section(DataConfig, load_params(params_path), "data")


def _params(tmp_path, **data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"data": {"seed": "unused.jsonl", "eval": "unused.jsonl", **data}}))
    return str(path)


def test_prepare_stage_writes_both_datasets_and_counts(tmp_path, capsys):
    seed = shutil.copy(FIXTURES / "alpaca_bad_rows.jsonl", tmp_path / "seed.jsonl")
    held_out = shutil.copy(FIXTURES / "sharegpt.json", tmp_path / "eval.json")
    out, eval_out, metrics = tmp_path / "r0" / "dataset.parquet", tmp_path / "eval.parquet", tmp_path / "m.json"
    args = ["--output", str(out), "--eval-output", str(eval_out), "--metrics", str(metrics)]
    inputs = {"seed": str(seed), "eval": str(held_out)}
    error = stage_error(capsys, prepare_stage.main, [*args, "--params", _params(tmp_path, **inputs)])
    assert re.search(r"seed\.jsonl line 2: not valid JSON", error)
    assert not out.exists()
    prepare_stage.main([*args, "--params", _params(tmp_path, **inputs, on_error="skip", source="demo")])
    result = json.loads(metrics.read_text())
    assert result["seed"]["samples"] == 2 and result["seed"]["duplicates"] == 1
    assert result["seed"]["skipped"] == {"invalid_json": 1, "missing_instruction": 1, "missing_response": 1,
                                         "wrong_type": 1}
    assert result["eval"]["samples"] == 2 and result["eval_in_seed"] == 0
    assert set(read_samples(out)["source"]) == {"demo"} and read_samples(eval_out).height == 2


def test_prepare_stage_takes_inputs_from_params_and_counts_eval_overlap(tmp_path):
    seed = shutil.copy(FIXTURES / "sharegpt.json", tmp_path / "seed.json")
    params = _params(tmp_path, seed=[str(seed), str(FIXTURES / "openai.jsonl")], eval=str(seed))
    prepare_stage.main(["--output", str(tmp_path / "d.parquet"), "--eval-output", str(tmp_path / "e.parquet"),
                        "--metrics", str(tmp_path / "m.json"), "--params", params])
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["seed"]["samples"] == 4 and result["eval_in_seed"] == 2
