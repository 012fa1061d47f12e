"""End to end: `dvc repro` of one round on a ~1M model and a small demo suite, in a temporary copy of the project.

Checks: every stage runs and writes its outputs; D(1) conserves every id of D(0); a second `dvc repro` runs
nothing; `dvc exp run -S select.m_quality=...` re-runs select (and what follows when the flags change) but none of
prepare/pretrain/train/score/cluster/judge of round 1; a stage that fails makes `dvc repro` exit non-zero; with
the cache linked (`cache.type: hardlink,symlink`) a model dir is stored once and re-run stages leave the cache intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from test_pipeline_helpers import REPO

from middo.pipeline.scaffold import DVC_CACHE_TYPE

pytestmark = pytest.mark.slow
KINDS = ("prepare", "pretrain", "train", "score", "cluster", "judge", "select", "refine", "eval")
FAST = {
    "model": {"max_length": 128},
    "pretrain": {"size": "tiny", "seq_len": 64, "batch_size": 8, "max_steps": 30},
    "train": {"epochs": 1, "max_steps": 15, "token_budget": 2048},
    "cluster": {"k": 5, "recall_queries": 20},
    "eval": {"max_new_tokens": 12},
    "loop": {"rounds": 1},
}


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _ran(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([\w-]+)'", result.stdout + result.stderr))


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from middo.demo.generate import SuiteConfig, write_suite

    root = tmp_path_factory.mktemp("e2e")
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    paths = write_suite(root / "data/demo", SuiteConfig(n_seed=100, n_eval=12, n_corpus=400))
    shutil.copytree(REPO / "data/demo/tasks", root / "data/demo/tasks", ignore=shutil.ignore_patterns("__pycache__"))
    lines = paths["seed"].read_text(encoding="utf-8").splitlines(keepends=True)
    paths["seed"].write_text("".join(lines[::2]), encoding="utf-8")  # 50 samples, every family still present
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for name, values in FAST.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (root / ".gitignore").write_text("/.middo-cache/\n__pycache__/\n", encoding="utf-8")
    _run(["git", "init", "-q"], root)
    _run(_dvc("init", "-q"), root)
    _run(_dvc("config", "cache.type", DVC_CACHE_TYPE), root)  # as `middo init` and this repository set it
    _run([str(Path(sys.executable).parent / "middo"), "unroll"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "project"], root)
    first = _run(_dvc("repro"), root)
    assert _ran(first) == set(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "first run"], root)
    return root


def test_repro_writes_every_output_and_conserves_ids(project):
    for path in ("models/base", "models/r1", "models/r2", "data/r1/flags.parquet", "data/r2/eval.json"):
        assert (project / path).exists(), path
    before = pl.read_parquet(project / "data/r0/dataset.parquet")
    after = pl.read_parquet(project / "data/r1/dataset.parquet")
    kept_or_parent = set(after["id"].to_list()) | set(after["parent"].drop_nulls().to_list())
    assert set(before["id"].to_list()) <= kept_or_parent
    assert json.loads((project / "data/r2/eval.json").read_text())  # final model evaluated
    baseline = json.loads((project / "data/r0/eval.json").read_text())  # M0 too, through lm-eval's local demo task
    assert baseline["tasks"]["middo_demo"]["samples"] == 12 and "exact_match_stderr" in baseline["tasks"]["middo_demo"]


def test_refine_stage_has_one_usage_record_for_every_request_the_server_received(project, tmp_path, monkeypatch):
    from middo.demo.sim_teacher import make_sim_teacher
    from middo.teacher import register_backend, registry
    from stages.refine import main

    monkeypatch.setattr(registry, "_registered", {})  # registrations end with the test
    made = []

    def counted_sim(cfg):
        made.append(make_sim_teacher(cfg))
        return made[-1]

    register_backend("counted-sim", counted_sim)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["teacher"]["backend"] = "counted-sim"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    r1 = project / "data" / "r1"
    main(["--data", str(project / "data/r0/dataset.parquet"), "--flags", str(r1 / "flags.parquet"),
          "--knn", str(r1 / "knn.parquet"), "--embeddings", str(r1 / "embeddings"), "--base",
          str(project / "models/base"), "--model", str(project / "models/r1"), "--round", "1",
          "--output", str(tmp_path / "dataset.parquet"), "--metrics", str(tmp_path / "refine.json"),
          "--params", str(tmp_path / "params.yaml")])
    usage = json.loads((tmp_path / "refine.json").read_text())["teacher_usage"]
    (teacher,) = made  # one teacher for the stage: refine's requests and the gate's judge
    assert usage["attempts"] == teacher.server.stats.total > 0
    assert usage["tokens"]["judge"]["prompt_tokens"] > 0 and usage["tokens"]["improve"]["prompt_tokens"] > 0
    assert pl.read_parquet(tmp_path / "dataset.parquet").equals(pl.read_parquet(r1 / "dataset.parquet"))


def test_plots_render(project):
    result = _run(_dvc("plots", "show", "--json"), project)
    assert "error" not in result.stdout.lower(), result.stdout[:2000]


def test_second_repro_runs_nothing(project):
    again = _run(_dvc("repro"), project)
    assert _ran(again) == set()
    assert json.loads(_run(_dvc("status", "--json"), project).stdout or "{}") == {}


def test_changing_select_reruns_select_and_what_follows_only(project):
    flags_before = (project / "data/r1/flags.parquet").read_bytes()
    result = _run(_dvc("exp", "run", "-S", "select.m_quality=0.0", "-S", "select.m_complexity=0.0"), project)
    ran = _ran(result)
    assert "select-1" in ran
    assert not ran & {"prepare", "pretrain", "train-1", "score-1", "cluster-1", "judge-1"}
    assert (project / "data/r1/flags.parquet").read_bytes() != flags_before, "m=0 flags every value beyond the mean"
    assert "refine-1" in ran


def _middo(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return _run([str(Path(sys.executable).parent / "middo"), *args], cwd, check)


def _flagged(flags: pl.DataFrame) -> dict[str, tuple]:
    return {row[0]: tuple(row[1:]) for row in flags.select("id", "hard", "sparse", "low_quality").iter_rows()}


def test_diff_and_report_across_experiments_and_commits(project, tmp_path):
    from middo.report.diff import diff_datasets

    for name, m_quality in (("mq-low", "0.25"), ("mq-high", "1.5")):
        _run(_dvc("exp", "run", "-n", name, "-S", f"select.m_quality={m_quality}"), project)
        shutil.copytree(project / "data/r1", tmp_path / name)  # the workspace holds the experiment's outputs
        _run(["git", "add", "-A"], project)
        _run(["git", "commit", "-qm", name], project)
    low, high = (_flagged(pl.read_parquet(tmp_path / name / "flags.parquet")) for name in ("mq-low", "mq-high"))
    changed = sorted(i for i in low if low[i] != high[i])
    datasets = [pl.read_parquet(tmp_path / name / "dataset.parquet") for name in ("mq-low", "mq-high")]
    expected = diff_datasets(*datasets).counts()
    assert changed and expected["kept"] < datasets[0].height
    for revs in (["mq-low", "mq-high"], ["HEAD~1", "HEAD"]):  # experiments by name, then the two commits
        args = ["diff", "1", "1", "--rev", revs[0], "--rev", revs[1], "--json", "--limit", "0"]
        document = json.loads(_middo(args, project).stdout)
        assert [entry["id"] for entry in document["flags_changed"]["samples"]] == changed
        assert document["counts"] == expected and document["before"]["rev"] == revs[0]
    text = _middo(["diff", "1", "1", "--rev", "mq-low", "--limit", "3"], project).stdout
    assert text.startswith("1 @ mq-low (") and "1 @ workspace (" in text and f"flags changed: {len(changed)}" in text
    absent = _middo(["diff", "2", "2", "--rev", "mq-low"], project, check=False)  # one round: no D(2) anywhere
    assert absent.returncode == 1 and "data/r2/dataset.parquet does not exist at mq-low" in absent.stderr
    _middo(["report", "--rev", "mq-low", "--rev", "mq-high", "--output", str(tmp_path / "c.html")], project)
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "select.m_quality" in page and f"flags changed on {len(changed)} samples" in page


def test_diff_at_a_revision_names_what_is_missing(project, tmp_path):
    unknown = _middo(["diff", "1", "1", "--rev", "no-such-exp", "--rev", "HEAD"], project, check=False)
    assert unknown.returncode == 1 and "no git revision or DVC experiment" in unknown.stderr
    _run(["git", "clone", "-q", str(project), str(tmp_path / "clone")], tmp_path)  # git only: no DVC cache
    uncached = _middo(["diff", "1", "1", "--rev", "HEAD~1", "--rev", "HEAD"], tmp_path / "clone", check=False)
    assert uncached.returncode == 1 and "neither in the local DVC cache nor on a remote" in uncached.stderr
    assert "Traceback" not in uncached.stderr


def test_a_failing_stage_makes_repro_exit_non_zero(project):
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["select"]["m_quality"] = -1.0
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    result = _run(_dvc("repro"), project, check=False)
    assert result.returncode != 0
    assert "select.m_quality" in result.stdout + result.stderr


def test_outputs_are_links_into_an_intact_cache(project):
    """A cached output is the cache's file (one copy on disk), and the stages re-run above (experiments, a failed
    repro) replaced their outputs rather than writing through the links: every cache file still has its hash."""
    cache = project / ".dvc/cache/files/md5"
    weights = sorted((project / "models/r1").rglob("*.safetensors"))
    assert weights and all(path.stat().st_nlink >= 2 or path.is_symlink() for path in weights)
    cached = {path.stat().st_ino for path in cache.rglob("*") if path.is_file()}
    assert all(path.resolve().stat().st_ino in cached for path in weights)
    checkpoints = project / "checkpoints/r1"
    assert checkpoints.is_dir() and not any(p.stat().st_ino in cached for p in checkpoints.rglob("*") if p.is_file())
    for path in cache.rglob("*"):
        if path.is_file() and not path.name.endswith(".dir"):
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            assert digest == path.parent.name + path.name, f"{path} was changed in place through a link"
