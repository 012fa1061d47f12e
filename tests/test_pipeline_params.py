"""The shipped params.yaml loads into every dataclass, and each stage declares exactly the params and code it reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from test_pipeline_helpers import REPO, middo_packages, script_sections

from middo.config import load_params, param_keys, section
from middo.demo.params import DEMO_PARAMS
from middo.pipeline.params_file import SECTIONS, render_params
from middo.pipeline.specs import STAGE_SPECS, UNTRACKED_PARAMS

PARAMS = REPO / "params.yaml"


@pytest.fixture(scope="module")
def params() -> dict:
    return load_params(PARAMS)


def test_every_section_loads_and_lists_every_field(params):
    assert list(params) == [name for name, _ in SECTIONS]
    for name, cls in SECTIONS:
        section(cls, params, name)  # unknown keys and bad values raise ConfigError
        assert list(params[name]) == [f.name for f in dataclasses.fields(cls)], f"params.yaml section {name!r}"


def test_every_section_is_documented():
    lines = PARAMS.read_text(encoding="utf-8").splitlines()
    for name, _ in SECTIONS:
        index = lines.index(f"{name}:")
        assert lines[index - 1].startswith("# Read by:") and lines[index - 2].startswith("# "), name


def _script(kind: str) -> Path:
    return REPO / "stages" / f"{kind}.py"


@pytest.mark.parametrize("kind", list(STAGE_SPECS))
def test_declared_sections_are_the_ones_the_script_loads(kind):
    assert script_sections(_script(kind)) == set(STAGE_SPECS[kind].sections)


@pytest.mark.parametrize("kind", list(STAGE_SPECS))
def test_code_deps_are_the_packages_the_script_imports(kind):
    assert middo_packages(_script(kind)) == set(STAGE_SPECS[kind].packages)


def test_generated_stage_params_match_the_fields_read_and_exist(params):
    from middo.pipeline import build_pipeline

    stages = build_pipeline(params["loop"]["rounds"], params)["stages"]
    for name, stage in stages.items():
        kind = name.split("-")[0]
        expected = [key for cls, sec in STAGE_SPECS[kind].sections for key in param_keys(cls, sec)]
        assert stage["params"] == [key for key in expected if key not in UNTRACKED_PARAMS], name
        for key in stage["params"]:
            sec, field = key.split(".")
            assert field in params[sec], f"{name} declares {key}, missing from params.yaml"


def test_shipped_params_are_the_demo_params_as_generated():
    assert PARAMS.read_text(encoding="utf-8") == render_params(DEMO_PARAMS), "regenerate params.yaml from DEMO_PARAMS"


def test_every_stage_script_has_the_one_shape():
    for kind in STAGE_SPECS:
        text = _script(kind).read_text(encoding="utf-8")
        doc = text.split('"""')[1]
        launcher = "[launcher] " if kind == "train" else ""  # train may run under torchrun, accelerate, srun
        assert f"\ndvc.yaml: {launcher}python -m stages.{kind} " in doc and "\nparams: " in doc, kind
        assert "@stage_main(" in text and "argparse" not in text, kind


def test_shipped_dvc_yaml_is_up_to_date(params):
    from middo.pipeline import build_pipeline

    shipped = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    assert shipped == build_pipeline(params["loop"]["rounds"], params), "run `middo unroll` after editing params.yaml"


def test_settings_that_cannot_change_a_result_are_read_but_never_tracked(params):
    from middo.pipeline import build_pipeline

    stages = build_pipeline(1, params)["stages"]
    tracked = {key for stage in stages.values() for key in stage["params"]}
    assert "teacher.concurrency" in UNTRACKED_PARAMS and "cluster.recall_queries" in UNTRACKED_PARAMS
    assert not tracked & UNTRACKED_PARAMS
    assert {"teacher.model", "teacher.temperature", "cluster.k", "score.token_budget"} <= tracked
    readers = {key for kind in STAGE_SPECS for cls, sec in STAGE_SPECS[kind].sections for key in param_keys(cls, sec)}
    assert readers >= UNTRACKED_PARAMS  # each one is a real setting some stage reads
    text = render_params(DEMO_PARAMS)
    assert "# Not tracked (cannot change a result, so changing one re-runs nothing): api_key_env, concurrency" in text
