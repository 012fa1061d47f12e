"""params.yaml sections load into frozen dataclasses with errors that name the key."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from middo.config import check, load_params, param_keys, section
from middo.errors import ConfigError


@dataclass(frozen=True)
class Example:
    rate: float = 0.1
    steps: int = 10
    name: str = "x"
    enabled: bool = True
    mode: Literal["a", "b"] = "a"
    url: str | None = None
    files: list[str] = field(default_factory=list)

    def __post_init__(self):
        check(self.steps > 0, "example.steps must be positive; set it to 1 or more")


def test_section_loads_and_coerces_ints_to_floats(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("example:\n  rate: 1\n  steps: 3\n  mode: b\n  files: [a, b]\n")
    loaded = section(Example, load_params(path), "example")
    assert loaded == Example(rate=1.0, steps=3, mode="b", files=["a", "b"])
    assert isinstance(loaded.rate, float)


def test_missing_section_gives_defaults():
    assert section(Example, {}, "example") == Example()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stpes": 3}, "did you mean example.steps"),
        ({"steps": "3"}, "whole number"),
        ({"steps": True}, "whole number"),
        ({"rate": "fast"}, "must be a number"),
        ({"enabled": "yes"}, "true or false"),
        ({"mode": "c"}, "choose one of"),
        ({"files": "a"}, "must be a list"),
        ({"steps": 0}, "set it to 1 or more"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        section(Example, {"example": values}, "example")


def test_optional_accepts_null_and_value():
    assert section(Example, {"example": {"url": None}}, "example").url is None
    assert section(Example, {"example": {"url": "http://x"}}, "example").url == "http://x"


def test_param_keys_lists_every_field():
    assert param_keys(Example, "example") == [
        "example.rate", "example.steps", "example.name", "example.enabled", "example.mode", "example.url",
        "example.files",
    ]


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="middo init"):
        load_params(tmp_path / "params.yaml")
