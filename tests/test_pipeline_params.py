"""The shipped params.yaml loads into every dataclass, and each stage declares exactly the params and code it reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from test_pipeline_helpers import REPO, middo_packages, script_sections, skip_unless_all_classes

from middo.config import load_params, param_keys, section
from middo.pipeline.params_file import SECTIONS
from middo.pipeline.specs import STAGE_SPECS, config_class

PARAMS = REPO / "params.yaml"


@pytest.fixture(autouse=True)
def _classes():
    skip_unless_all_classes()


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(PARAMS)


def test_every_section_loads_and_lists_every_field(params):
    assert list(params) == [name for name, _ in SECTIONS]
    for name, target in SECTIONS:
        cls = config_class(target)
        section(cls, params, name)  # unknown keys and bad values raise ConfigError
        assert list(params[name]) == [f.name for f in dataclasses.fields(cls)], f"params.yaml section {name!r}"


def test_every_section_is_documented():
    lines = PARAMS.read_text(encoding="utf-8").splitlines()
    for name, _ in SECTIONS:
        index = lines.index(f"{name}:")
        assert lines[index - 1].startswith("# Read by:") and lines[index - 2].startswith("# "), name


def _script(kind: str) -> Path:
    script = REPO / "stages" / f"{kind}.py"
    if not script.exists():
        pytest.skip(f"stages/{kind}.py not written yet")
    return script


@pytest.mark.parametrize("kind", list(STAGE_SPECS))
def test_declared_sections_are_the_ones_the_script_loads(kind):
    loaded = {(config_class(target), name) for target, name in script_sections(_script(kind))}
    declared = {(config_class(target), name) for target, name in STAGE_SPECS[kind].sections}
    assert loaded == declared


@pytest.mark.parametrize("kind", list(STAGE_SPECS))
def test_code_deps_are_the_packages_the_script_imports(kind):
    assert middo_packages(_script(kind)) == set(STAGE_SPECS[kind].packages)


def test_generated_stage_params_match_the_fields_read_and_exist(params):
    from middo.pipeline import build_pipeline

    stages = build_pipeline(params["loop"]["rounds"], params)["stages"]
    for name, stage in stages.items():
        kind = name.split("-")[0]
        expected = [key for target, sec in STAGE_SPECS[kind].sections for key in param_keys(config_class(target), sec)]
        assert stage["params"] == expected, name
        for key in stage["params"]:
            sec, field = key.split(".")
            assert field in params[sec], f"{name} declares {key}, missing from params.yaml"


def test_shipped_dvc_yaml_is_up_to_date(params):
    from middo.pipeline import build_pipeline

    shipped = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    assert shipped == build_pipeline(params["loop"]["rounds"], params), "run `middo unroll` after editing params.yaml"
