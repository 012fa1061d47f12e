"""`trust_remote_code` is passed explicitly on every load: a model that ships code is refused with a message naming
the param (never a `[y/N]` prompt), and the code is not run."""

from __future__ import annotations

import json
import shutil

import pytest

from middo.errors import InputError
from middo.model import load
from middo.model.config import ModelConfig
from middo.teacher import TeacherConfig

CUSTOM_CODE = """
import pathlib
pathlib.Path(__file__).with_name("RAN").write_text("the repo's code ran")
from transformers import LlamaConfig, LlamaForCausalLM
class CustomConfig(LlamaConfig):
    model_type = "middo_custom"
class CustomModel(LlamaForCausalLM):
    config_class = CustomConfig
"""


def test_every_load_says_whether_remote_code_may_run(monkeypatch):
    calls = []

    def spy(name):
        def from_pretrained(*args, **kwargs):
            calls.append((name, kwargs.get("trust_remote_code", "unset")))
            raise OSError("stop here")
        return from_pretrained

    monkeypatch.setattr(load.AutoTokenizer, "from_pretrained", spy("tokenizer"))
    monkeypatch.setattr(load.AutoModelForCausalLM, "from_pretrained", spy("model"))
    for trust in (False, True):
        with pytest.raises(InputError):
            load.load_model("owner/model", trust_remote_code=trust)
    assert calls == [("tokenizer", False), ("tokenizer", True)]
    monkeypatch.setattr(load.AutoTokenizer, "from_pretrained", lambda *a, **k: calls.append(("tok", k)) or object())
    with pytest.raises(InputError):
        load.load_model("owner/model")
    assert calls[-1] == ("model", False)
    assert ModelConfig(base="m").trust_remote_code is False and TeacherConfig().trust_remote_code is False


def test_a_model_with_its_own_code_is_refused_and_the_code_never_runs(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config.update(model_type="middo_custom", architectures=["CustomModel"],
                  auto_map={"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomModel"})
    (model_dir / "config.json").write_text(json.dumps(config))
    (model_dir / "custom.py").write_text(CUSTOM_CODE)
    with pytest.raises(InputError, match="set model.trust_remote_code: true"):
        load.load_model(model_dir, device="cpu")
    assert not (model_dir / "RAN").exists()
