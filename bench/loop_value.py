"""Loop value: does the closed loop beat the seed model, and an equal-budget random control, on the bundled demo?

Every (seed, arm) is one DVC experiment of one project, `--workdir`/project: a git + DVC repo holding the stage
scripts (copied from this repo), params.yaml (this repo's, with `--set` and `--rounds` applied), the dvc.yaml that
`middo unroll` writes from it, and one demo suite per seed under `data/suites/s<seed>/` (seed.jsonl, eval.jsonl,
corpus.txt; `--rate` plants every defect at that rate). The library is the installed middo (the venv's), as for
`middo demo`: the project holds no copy of src/middo. dvc.yaml reads `data.seed`, `data.eval` and `pretrain.corpus`
from params at run time, so each experiment picks its seed's suite with `-S` (SUITE_KEYS).

Arms, as `dvc exp run -n s<seed>-<arm> -S data.seed=... -S data.eval=... -S pretrain.corpus=... [more] [target]`:

    middo     nothing more: params.yaml as it is
    random    -S select.mode=random     (the σ-rule's number of flags per signal, chosen at random)
    nogate    -S refine.gate=false      (every parsed child accepted)
    mrgate    -S refine.gate_loss_model=round  (the simplify check under Mr, as before issue 19)
    oracle    -S data.seed=data/suites/s<seed>/oracle/seed.jsonl, target eval-1
    retrain   -S train.seed=<train.seed + 1>, target eval-1

The two controls run no signal and no teacher. `oracle` trains on the seed set with every planted defect fixed from
the ground truth (`middo.demo.oracle`, the ideal round-1 D(1)): that file is written before the baseline commit
from D(0) as prepare makes it (the suite's seed file ingested with the baseline's `data` settings), saved as JSONL
rows that ingest back to the same samples; its experiment runs prepare, pretrain, train-1 and eval-1 only (a stage
target instead of `loop.rounds`, which shapes dvc.yaml and cannot change per experiment), so its eval@1 is the
oracle's final model, the ceiling: if it does not beat the seed model, no selection can. `retrain` keeps D(1) = D(0)
and trains with `train.seed` + 1: its gain is pure training noise, the size a difference between arms must exceed
to mean anything. The eval@1 (seed model) of both is the one of the seed's first pipeline arm in `--arms`, so a
control needs one.

The experiments run one after the other in the project's workspace (`dvc exp run`, its output in
`--workdir`/logs/<name>.log), each from a clean baseline: untracked and ignored files (outputs, dvc.lock, the teacher
cache) removed first. Stages that do not depend on an arm's settings (prepare ... judge-1, eval-1) run once per
seed: DVC's run cache restores them for the seed's other arms. `--resume` keeps the workdir: the baseline is
rewritten and committed only if something changed (params, suites, stage scripts), and experiments that finished
with the same params and inputs (stage scripts, dvc.yaml, the seed's suite), on this baseline or an earlier one, are
not run again. An interrupted experiment is run again by `--resume`; its finished stages come from the run cache.

Results: eval exact match of eval@1 and of the final eval, teacher requests/tokens and accepted children (summed
`refine.json` over rounds) are read from `dvc exp show --json`. The figures that need the datasets (defects left by
`middo.demo.audit`, signal AUROC/precision/recall against the planted defects from round 1's signal tables, and the
self-judge AUROC below) are computed from each finished experiment's outputs after `dvc exp apply <name>` in the
project (the workspace cleaned before each, so no file of another experiment is left over), and cached per
experiment commit in `--workdir`/figures/, so `--resume` computes them once. The workspace is left at the baseline.

    .venv/bin/python bench/loop_value.py --seeds 0,1,2 --arms middo,random,nogate [--rounds 1] [--resume] \\
        [--set train.epochs=40 ...] [--rate 0.08] [--workdir DIR]     # add ,oracle,retrain to --arms for the controls

Prints per run and per signal tables, then one JSON line: `gain_vs_seed` (final - eval@1 exact match of the first
arm, mean over seeds), `gain_vs_random` (final first arm - final random), `auroc` (per signal, round 1: complexity =
mean percentile rank of loss_pre and loss_cur vs over_hard + wrong_answer; quality = -quality vs garbled;
diversity = -knn_sim vs rare families), flag precision/recall per signal and arm, accuracy mean/std per arm,
teacher requests/tokens per arm, `defects_left` (defective samples of the final dataset by `middo.demo.audit`, mean
per arm), `auroc_quality_self_judge` (quality as M1 rates itself, `judge.mode: logits`, against garbled prompts,
whatever judge the arms used: the judge stage run with that mode on the first pipeline arm's round-1 outputs),
`oracle_gain` / `retrain_gain` (final - eval@1) when those arms ran, and `wall_s` per experiment run this time.
The teacher is the SIMULATED one when params.yaml has teacher.backend: sim.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
SUITES_DIR = "data/suites"
TASKS_DIR = "data/demo/tasks"
SUITE_FILES = {"seed": "seed.jsonl", "eval": "eval.jsonl", "corpus": "corpus.txt"}
SUITE_KEYS = {"seed": "data.seed", "eval": "data.eval", "corpus": "pretrain.corpus"}
"""The params that hold the suite's files (dvc.yaml reads them at run time): set per seed."""
ARMS: dict[str, dict[str, Any]] = {
    "middo": {},
    "random": {"select.mode": "random"},
    "nogate": {"refine.gate": False},
    "mrgate": {"refine.gate_loss_model": "round"},  # the simplify check before issue 19 (under Mr)
    "oracle": {},  # data.seed -> the oracle file (exp_settings)
    "retrain": {},  # train.seed + 1 (exp_settings)
}
"""Each arm's settings (`-S key=value`) beside the seed's suite."""
CONTROLS = ("oracle", "retrain")
"""Arms that run no signals and no teacher: only the seed model's stages (CONTROL_TARGET and what it needs)."""
CONTROL_TARGET = "eval-1"
SIGNALS = ("complexity", "quality", "diversity")


# --------------------------------------------------------------------------------------------- pure helpers


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`section.key=value` strings (values parsed as YAML, as `dvc exp run -S` does) -> {"section.key": value}."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        parts = name.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise SystemExit(f"--set takes section.key=value, e.g. train.epochs=40 (got {pair!r})")
        overrides[name] = yaml.safe_load(value)
    return overrides


def get_path(tree: dict, dotted: str, default: Any = None) -> Any:
    """The value at `a.b.c` of nested dicts, or `default`."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts. Every dict on the way must exist; the key itself too, unless it goes into a
    free-form dict below a section (e.g. `teacher.options.<name>`)."""
    *parents, key = dotted.split(".")
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise SystemExit(f"--set {dotted}: no such setting in params.yaml")
        node = node[part]
    if key not in node and len(parents) < 2:
        raise SystemExit(f"--set {dotted}: no such setting in params.yaml")
    node[key] = value


def base_params(repo_params: dict, overrides: dict[str, Any], rounds: int | None) -> dict:
    """The baseline's params: this repo's params.yaml with `--set` overrides and the round count."""
    missing = [key for key in SUITE_KEYS.values() if get_path(repo_params, key) is None]
    if missing:
        raise SystemExit(f"params.yaml has no {', '.join(missing)}: the bench sets the demo suite through them")
    params = copy.deepcopy(repo_params)
    for dotted, value in overrides.items():
        if dotted in SUITE_KEYS.values():
            raise SystemExit(f"--set {dotted}: the bench sets it per seed (the demo suite's file)")
        set_path(params, dotted, value)
    if rounds is not None:
        params.setdefault("loop", {})["rounds"] = rounds
    return params


def suite_paths(seed: int) -> dict[str, str]:
    """The files of a seed's suite in the project (relative paths), by role."""
    return {role: f"{SUITES_DIR}/s{seed}/{name}" for role, name in SUITE_FILES.items()}


def oracle_seed_path(seed: int) -> str:
    """The oracle's seed set (D(1) of a perfect round); named seed.jsonl so prepare gives it the same `source`."""
    return f"{SUITES_DIR}/s{seed}/oracle/{SUITE_FILES['seed']}"


def exp_name(seed: int, arm: str) -> str:
    return f"s{seed}-{arm}"


def exp_settings(arm: str, seed: int, params: dict) -> dict[str, Any]:
    """The `-S` settings of one experiment: the seed's suite, then the arm's own."""
    paths = suite_paths(seed)
    settings: dict[str, Any] = {key: paths[role] for role, key in SUITE_KEYS.items()}
    settings.update(ARMS[arm])
    if arm == "oracle":
        settings[SUITE_KEYS["seed"]] = oracle_seed_path(seed)
    if arm == "retrain":
        settings["train.seed"] = get_path(params, "train.seed", 0) + 1
    return settings


def exp_target(arm: str) -> str | None:
    """The stage an experiment reproduces (None: the whole pipeline)."""
    return CONTROL_TARGET if arm in CONTROLS else None


def format_value(value: Any) -> str:
    """A value as `-S key=<value>` takes it (YAML-ish; strings that would parse as something else are quoted)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if re.fullmatch(r"[\w./-]+", text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def override_args(settings: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in settings.items():
        args += ["-S", f"{key}={format_value(value)}"]
    return args


def expected_params(baseline: dict, settings: dict[str, Any]) -> dict:
    """params.yaml of an experiment: the baseline's with its `-S` settings."""
    params = copy.deepcopy(baseline)
    for key, value in settings.items():
        set_path(params, key, value)
    return params


def parse_exp_show(rows: list[dict]) -> list[dict]:
    """`dvc exp show --json [-A]` -> one entry per experiment: name, rev, baseline (the commit it derives from),
    state (success, failed, or queued/running for queue tasks), params (of params.yaml), metrics (path -> data, files
    that exist)."""
    found = []
    for row in rows:
        if row.get("rev") == "workspace":
            continue
        for exp in row.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs:
                continue
            rev = revs[0]
            data = rev.get("data") or {}
            state = (exp.get("executor") or {}).get("state") or ("failed" if rev.get("error") else "success")
            metrics = {path: entry["data"] for path, entry in (data.get("metrics") or {}).items()
                       if isinstance(entry, dict) and "data" in entry}
            found.append({"name": exp.get("name") or rev.get("name"), "rev": rev.get("rev"), "baseline": row["rev"],
                          "state": state, "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
                          "metrics": metrics})
    return found


def final_eval_path(arm: str, rounds: int) -> str:
    return f"data/r{1 if arm in CONTROLS else rounds + 1}/eval.json"


def finished_experiment(candidates: list[dict], name: str, params: dict, arm: str, rounds: int, head: str,
                        same_inputs) -> dict | None:
    """The experiment `name` that finished with exactly `params` and has its final eval, on `head` or on an earlier
    baseline whose inputs are the same (`same_inputs(baseline)`); HEAD's preferred. None: it must run."""
    for exp in sorted(candidates, key=lambda e: e["baseline"] != head):
        if (exp["name"] == name and exp["params"] == params and exp["state"] == "success"
                and final_eval_path(arm, rounds) in exp["metrics"]
                and (exp["baseline"] == head or same_inputs(exp["baseline"]))):
            return exp
    return None


def teacher_usage(metrics: dict[str, dict], rounds: int) -> dict[str, float]:
    """Teacher requests and tokens and children requested/accepted, summed over the rounds' `refine.json`."""
    usage: dict[str, float] = {}
    for r in range(1, rounds + 1):
        refine = metrics.get(f"data/r{r}/refine.json")
        if not refine:
            continue
        found = {k: v for k, v in (refine.get("teacher_usage") or {}).items()
                 if k in ("requests", "prompt_tokens", "completion_tokens", "failed")}
        found |= {f"children_{k}": v for k, v in (refine.get("total") or {}).items() if k in ("requested", "accepted")}
        for key, value in found.items():
            usage[key] = usage.get(key, 0) + value
    return usage


def exact_match(metrics: dict[str, dict], path: str) -> float:
    """Held-out exact match: the demo's lm-eval task (`tasks.middo_demo`), else middo's own `exact_match`."""
    found = metrics.get(path) or {}
    value = ((found.get("tasks") or {}).get("middo_demo") or {}).get("exact_match", found.get("exact_match"))
    return math.nan if value is None else float(value)


def arm_result(exp: dict, arm: str, rounds: int, figures: dict, reference: dict | None) -> dict:
    """Eval accuracy (eval@1 and final), round-1 signal findings, summed teacher usage and defective samples per
    dataset of one experiment. A control's eval@1 and D(0) are its seed's reference arm's, and its D(1) is its own
    D(0) (the oracle set, or D(0) itself for retrain); it has no findings (NaN)."""
    no_findings = {s: {"auroc": math.nan, "precision": math.nan, "recall": math.nan} for s in SIGNALS}
    defects = {int(r): n for r, n in figures["defects"].items()}
    result = {
        "eval_first": exact_match(exp["metrics"], "data/r1/eval.json"),
        "eval_final": exact_match(exp["metrics"], final_eval_path(arm, rounds)),
        "signals": figures.get("signals") or no_findings,
        "teacher": teacher_usage(exp["metrics"], rounds),
        "defects": defects,
    }
    if arm in CONTROLS:
        result["eval_first"] = reference["eval_first"] if reference else math.nan
        first = reference["defects"][min(reference["defects"])] if reference and reference["defects"] else None
        own = defects.get(0)
        result["defects"] = {r: n for r, n in ((0, first), (1, own)) if n is not None}
    if "self_judge_auroc" in figures:
        result["self_judge_auroc"] = figures["self_judge_auroc"]
    return result


def aggregate(results: dict[tuple[int, str], dict], arms: list[str]) -> dict:
    """The figures over seeds: gains, AUROC per signal, precision/recall per arm, accuracy and teacher per arm."""
    from middo.demo.metrics import mean_spread

    seeds = sorted({seed for seed, _ in results})

    def per_seed(arm: str, fn) -> list[float]:
        return [fn(results[(seed, arm)]) for seed in seeds if (seed, arm) in results]

    first_arm = arms[0]
    out: dict = {"seeds": seeds, "arms": arms}
    gain = mean_spread(per_seed(first_arm, lambda r: r["eval_final"] - r["eval_first"]))
    out["gain_vs_seed"], out["gain_vs_seed_std"] = gain["mean"], gain["std"]
    out["gain_vs_random"] = out["gain_vs_random_std"] = None
    if "random" in arms and first_arm != "random":
        finals = [(results[(s, first_arm)]["eval_final"], results[(s, "random")]["eval_final"]) for s in seeds]
        gain = mean_spread([ours - control for ours, control in finals])
        out["gain_vs_random"], out["gain_vs_random_std"] = gain["mean"], gain["std"]
    for control in CONTROLS:
        if control in arms:
            gain = mean_spread(per_seed(control, lambda r: r["eval_final"] - r["eval_first"]))
            out[f"{control}_gain"], out[f"{control}_gain_std"] = gain["mean"], gain["std"]
    out["auroc_quality_self_judge"] = mean_spread(
        [r["self_judge_auroc"] for r in results.values() if "self_judge_auroc" in r])["mean"]
    out["auroc"] = {s: mean_spread(per_seed(first_arm, lambda r, s=s: r["signals"][s]["auroc"]))["mean"]
                    for s in SIGNALS}
    out["flags"] = {
        arm: {s: {k: mean_spread(per_seed(arm, lambda r, s=s, k=k: r["signals"][s][k]))["mean"]
                  for k in ("precision", "recall")} for s in SIGNALS}
        for arm in arms
    }
    out["accuracy"] = {
        arm: {"seed": mean_spread(per_seed(arm, lambda r: r["eval_first"])),
              "final": mean_spread(per_seed(arm, lambda r: r["eval_final"]))}
        for arm in arms
    }

    def left(r: dict) -> float:
        return r["defects"][max(r["defects"])] if r["defects"] else math.nan

    out["defects_left"] = {arm: mean_spread(per_seed(arm, left))["mean"] for arm in arms}
    out["teacher"] = {
        arm: {k: mean_spread(per_seed(arm, lambda r, k=k: r["teacher"].get(k, math.nan)))["mean"]
              for k in ("requests", "prompt_tokens", "completion_tokens", "children_accepted")}
        for arm in arms
    }
    return out


def _finite(value):
    """NaN -> None throughout, so the JSON line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _f(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _defects(by_round: dict[int, int]) -> str:
    """Defective samples of D(0) and of the last dataset, e.g. `900->412`."""
    return f"{by_round[min(by_round)]}->{by_round[max(by_round)]}" if by_round else "-"


def print_tables(results: dict[tuple[int, str], dict], figures: dict) -> None:
    print(f"{'seed':>4} {'arm':<8}{'eval@1':>8}{'final':>8}{'gain':>8}{'requests':>10}{'tokens':>9}{'accepted':>10}"
          f"{'defects':>14}")
    for (seed, arm), r in sorted(results.items()):
        t = r["teacher"]
        tokens = t.get("prompt_tokens", 0) + t.get("completion_tokens", 0)
        print(f"{seed:>4} {arm:<8}{_f(r['eval_first']):>8}{_f(r['eval_final']):>8}"
              f"{_f(r['eval_final'] - r['eval_first']):>8}{t.get('requests', 0):>10}{tokens:>9}"
              f"{t.get('children_accepted', 0):>10}{_defects(r['defects']):>14}")
    print(f"\n{'signal':<11}{'AUROC':>7}  " + "  ".join(f"{arm + ' P/R':>14}" for arm in figures["arms"]))
    for s in SIGNALS:
        cells = [figures["flags"][arm][s] for arm in figures["arms"]]
        pr = "  ".join(f"{_f(c['precision']) + '/' + _f(c['recall']):>14}" for c in cells)
        print(f"{s:<11}{_f(figures['auroc'][s]):>7}  {pr}")
    print(f"quality as the round model rates itself (judge.mode logits), AUROC vs garbled: "
          f"{_f(figures['auroc_quality_self_judge'])}")
    for arm, acc in figures["accuracy"].items():
        print(f"{arm:<8} accuracy seed {_f(acc['seed']['mean'])} ± {_f(acc['seed']['std'])} -> final "
              f"{_f(acc['final']['mean'])} ± {_f(acc['final']['std'])} over {acc['final']['n']} seeds")


# --------------------------------------------------------------------------------------------- the project


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tool_env() -> dict[str, str]:
    """Environment of dvc, git and stage calls: this interpreter's bin first on PATH (the stages' `python`), a
    commit identity if none is set, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "2")
    env["DVC_NO_ANALYTICS"] = "1"
    for key, value in (("GIT_AUTHOR_NAME", "loop_value"), ("GIT_AUTHOR_EMAIL", "loop_value@localhost"),
                       ("GIT_COMMITTER_NAME", "loop_value"), ("GIT_COMMITTER_EMAIL", "loop_value@localhost")):
        env.setdefault(key, value)
    return env


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"{shlex.join(args)} failed in {cwd} (exit {result.returncode}):\n"
                         f"{(result.stdout + result.stderr)[-3000:]}")
    return result


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh([sys.executable, "-m", "dvc", *args], project, check)


def git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(["git", *args], project, check)


def init_project(project: Path) -> None:
    project.mkdir(parents=True)
    git(project, "init", "-q")
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    (project / ".gitignore").write_text("/.middo-cache/\n__pycache__/\n", encoding="utf-8")
    if (REPO / ".dvcignore").exists():
        shutil.copy2(REPO / ".dvcignore", project / ".dvcignore")


def reset_workspace(project: Path) -> None:
    """Back to the baseline commit: tracked files restored; untracked and ignored ones (outputs, dvc.lock, the
    teacher cache) removed, except DVC's own directory (its cache)."""
    git(project, "reset", "-q", "--hard")
    git(project, "clean", "-q", "-ffdx", "-e", "/.dvc")


def write_oracle(project: Path, seed: int, params: dict) -> None:
    """The oracle's seed file: D(0) as prepare makes it from the seed's suite (the baseline's `data` settings), then
    `oracle_round`, written back as suite rows (`messages` plus the meta fields) that ingest to the same samples."""
    from middo.config import section
    from middo.data.config import DataConfig
    from middo.data.ingest import ingest
    from middo.data.schema import read_samples
    from middo.demo.oracle import oracle_round

    data = section(DataConfig, params, "data")
    with tempfile.TemporaryDirectory() as scratch:
        ingest([str(project / suite_paths(seed)["seed"])], f"{scratch}/r0.parquet", data.format, data.source,
               data.on_error, data.policy)
        fixed = oracle_round(read_samples(f"{scratch}/r0.parquet"), seed)
    out = project / oracle_seed_path(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in fixed.select("messages", "meta").iter_rows(named=True):
            meta = json.loads(row["meta"] or "{}")
            handle.write(json.dumps({"messages": row["messages"], **meta}, ensure_ascii=False) + "\n")


def write_project(project: Path, params: dict, suites: dict[int, Any]) -> None:
    """The baseline's files: stage scripts, params.yaml (the first seed's suite), dvc.yaml as `middo unroll` writes
    it, the suites and their oracle seed files (written whatever the arms, so the baseline does not depend on them)."""
    from middo.demo.generate import write_suite

    shutil.rmtree(project / "stages", ignore_errors=True)
    shutil.copytree(REPO / "stages", project / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(project / TASKS_DIR, ignore_errors=True)  # the lm-eval task of eval.tasks (reads data/eval.parquet)
    shutil.copytree(REPO / TASKS_DIR, project / TASKS_DIR, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(project / SUITES_DIR, ignore_errors=True)
    for seed, suite in suites.items():
        write_suite(project / SUITES_DIR / f"s{seed}", suite)
        write_oracle(project, seed, params)
    baseline = expected_params(params, {key: suite_paths(min(suites))[role] for role, key in SUITE_KEYS.items()})
    (project / "params.yaml").write_text(yaml.safe_dump(baseline, sort_keys=False), encoding="utf-8")
    sh([str(Path(sys.executable).parent / "middo"), "unroll"], project)


def commit_baseline(project: Path) -> bool:
    """Commit the baseline's files if they changed; returns whether a commit was made."""
    git(project, "add", "-A")
    if git(project, "diff", "--cached", "--quiet", check=False).returncode == 0 and \
            git(project, "rev-parse", "-q", "--verify", "HEAD", check=False).returncode == 0:
        return False
    git(project, "commit", "-q", "-m", "loop_value baseline")
    return True


def experiments(project: Path) -> list[dict]:
    """Every experiment of the project, on any baseline commit (`dvc exp show --json -A`)."""
    return parse_exp_show(json.loads(dvc(project, "exp", "show", "--json", "-A").stdout or "[]"))


def same_inputs(project: Path, seed: int, baseline: str) -> bool:
    """Whether what an experiment of `seed` reads besides params (stage scripts, dvc.yaml, the seed's suite) is the
    same at a baseline commit as at HEAD."""
    paths = ["stages", "dvc.yaml", ".dvcignore", TASKS_DIR, f"{SUITES_DIR}/s{seed}"]
    return git(project, "diff", "--quiet", baseline, "HEAD", "--", *paths, check=False).returncode == 0


def run_experiment(project: Path, log_path: Path, name: str, settings: dict[str, Any], target: str | None) -> bool:
    """`dvc exp run -n name -S ... [target]` in the cleaned workspace, its output in `log_path`; whether it succeeded.
    No `-f`: it would also force every stage to run, bypassing the run cache that shares round 1."""
    reset_workspace(project)
    args = [sys.executable, "-m", "dvc", "exp", "run", "-n", name, *override_args(settings)]
    args += [target] if target else []
    log(f"{name}: running  {' '.join(override_args(settings))}{'  target ' + target if target else ''}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as out:
        return subprocess.run(args, cwd=project, env=tool_env(), stdout=out, stderr=subprocess.STDOUT).returncode == 0


def self_judge_auroc(project: Path, scratch: Path, params: dict) -> float:
    """AUROC against garbled prompts of round 1's quality as the round model M1 rates itself (`judge.mode: logits`):
    the judge stage on judge-1's inputs (D(0), models/r1) with that mode, its outputs in `scratch`."""
    from middo.demo.findings import ground_truth
    from middo.demo.metrics import auroc
    from middo.tables import join_by_id

    scratch.mkdir(parents=True, exist_ok=True)
    self_params = copy.deepcopy(params)
    self_params["judge"]["mode"] = "logits"
    # A diagnostic of the raw self-ratings: keep every one, however little score mass, and never refuse the signal.
    self_params["judge"].update(min_score_mass=0.0, max_failure_rate=1.0, min_quality_std=0.0)
    (scratch / "params.yaml").write_text(yaml.safe_dump(self_params, sort_keys=False), encoding="utf-8")
    ratings = scratch / "ratings_self.parquet"
    argv = [sys.executable, "-m", "stages.judge", "--data", "data/r0/dataset.parquet", "--model", "models/r1",
            "--output", str(ratings), "--metrics", str(scratch / "judge_self.json"),
            "--plot", str(scratch / "judge_self_hist.csv"), "--params", str(scratch / "params.yaml")]
    with (scratch / "judge-self.log").open("w", encoding="utf-8") as handle:
        result = subprocess.run(argv, cwd=project, env=tool_env(), stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = (scratch / "judge-self.log").read_text(encoding="utf-8").splitlines()[-15:]
        raise SystemExit(f"self-judge failed in {project} (exit {result.returncode}):\n" + "\n".join(tail))
    table = join_by_id(pl.read_parquet(ratings).select("id", "quality"), ground_truth(project), "ratings", "seed set")
    return auroc((-table["quality"]).to_list(), (table["planted"] == "garbled").to_list())


def apply_experiment(project: Path, rev: str) -> None:
    """`dvc exp apply`: the experiment's params, dvc.lock and metrics, and its outputs from the cache. Its checkout
    fails for the outputs of stages an experiment did not run (a control's target leaves them out of its dvc.lock):
    then every output its dvc.lock records is checked out and must be there."""
    result = dvc(project, "exp", "apply", rev, check=False)
    if result.returncode == 0:
        return
    dvc(project, "checkout", "--allow-missing", check=False)
    lock_path = project / "dvc.lock"
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) if lock_path.exists() else None
    recorded = [out["path"] for stage in ((lock or {}).get("stages") or {}).values() for out in stage.get("outs", [])]
    missing = [path for path in recorded if not (project / path).exists()]
    if not recorded or missing:
        raise SystemExit(f"dvc exp apply {rev} failed in {project} (missing: {missing or 'dvc.lock'}):\n"
                         f"{(result.stdout + result.stderr)[-3000:]}")


def exp_figures(project: Path, figures_dir: Path, exp: dict, self_judge: bool) -> dict:
    """Defective samples per dataset, round-1 signal findings and (when asked) the self-judge AUROC of one finished
    experiment, from its outputs (`dvc exp apply`); cached per experiment commit."""
    from middo.demo.findings import round_table, rounds_with, signal_findings
    from middo.demo.report import dataset_defects

    cache = figures_dir / f"{exp['name']}-{exp['rev'][:12]}.json"
    if cache.exists():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if not self_judge or "self_judge_auroc" in cached:
            return cached
    log(f"{exp['name']}: dvc exp apply {exp['rev'][:8]}, figures from its outputs")
    reset_workspace(project)
    apply_experiment(project, exp["rev"])
    figures: dict = {"defects": {r: counts["defective"] for r, counts in dataset_defects(project).items()}}
    flagged = rounds_with(project, "flags.parquet")
    figures["signals"] = signal_findings(round_table(project, flagged[0])) if flagged else None
    if self_judge:
        figures["self_judge_auroc"] = self_judge_auroc(project, figures_dir / f"{exp['name']}-self-judge",
                                                       exp["params"])
    figures_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(figures), encoding="utf-8")
    return figures


def main(argv: list[str] | None = None) -> None:
    from middo.demo.generate import SuiteConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated suite seeds, e.g. 0,1,2")
    parser.add_argument("--arms", default="middo,random,nogate", help=f"comma-separated arms from {list(ARMS)}")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (default: loop.rounds)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "loop_value",
                        help="holds the DVC project (project/), the experiments' logs (logs/) and cached figures")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a params.yaml setting for every arm (repeatable), e.g. train.epochs=40")
    parser.add_argument("--rate", type=float, default=None,
                        help="plant every defect at this rate instead of the suite's default (e.g. 0.08)")
    parser.add_argument("--resume", action="store_true",
                        help="keep --workdir: experiments that finished with the same settings are not run again")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms or not seeds:
        parser.error(f"--arms takes names from {list(ARMS)} (got {unknown or arms}); --seeds at least one seed")
    pipeline_arms = [a for a in arms if a not in CONTROLS]
    if any(a in CONTROLS for a in arms) and not pipeline_arms:
        parser.error("--arms: oracle and retrain need a pipeline arm (middo, random, nogate or mrgate) too; they take "
                     "its round-1 model as their eval@1")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds takes 1 or more")

    repo_params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params = base_params(repo_params, parse_overrides(args.set), args.rounds)
    rounds = int(get_path(params, "loop.rounds", 2))
    suites = {}
    for seed in seeds:
        default = SuiteConfig(seed=seed)
        suites[seed] = default if args.rate is None else SuiteConfig(seed=seed, rates=dict.fromkeys(default.rates,
                                                                                                 args.rate))

    workdir = args.workdir.resolve()
    project, figures_dir, logs_dir = workdir / "project", workdir / "figures", workdir / "logs"
    if not args.resume and workdir.exists():
        shutil.rmtree(workdir)
    fresh = not (project / ".dvc").exists()
    if fresh:
        shutil.rmtree(project, ignore_errors=True)
        init_project(project)
    else:
        reset_workspace(project)
    write_project(project, params, suites)
    if commit_baseline(project) and not fresh:
        log(f"{project}: new baseline commit (params, suites or stage scripts changed); experiments of earlier "
            "baselines are reused where their params and inputs are the same")
    head = git(project, "rev-parse", "HEAD").stdout.strip()
    baseline = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))

    plan = {(seed, arm): exp_settings(arm, seed, params) for seed in seeds for arm in arms}

    def pick(found: list[dict]) -> dict[tuple[int, str], dict | None]:
        return {(seed, arm): finished_experiment(found, exp_name(seed, arm), expected_params(baseline, settings),
                                                 arm, rounds, head, lambda b, s=seed: same_inputs(project, s, b))
                for (seed, arm), settings in plan.items()}

    found = [] if fresh else experiments(project)
    chosen = pick(found)
    wall: dict[str, float] = {}
    try:
        for (seed, arm), settings in plan.items():
            name = exp_name(seed, arm)
            if chosen[(seed, arm)]:
                log(f"{name}: finished earlier ({chosen[(seed, arm)]['rev'][:8]}), not run again")
                continue
            if any(e["name"] == name and e["baseline"] == head for e in found):
                dvc(project, "exp", "remove", name)  # made with other params: the name is taken on this baseline
            start = time.perf_counter()
            ok = run_experiment(project, logs_dir / f"{name}.log", name, settings, exp_target(arm))
            wall[name] = time.perf_counter() - start
            log(f"{name}: {'finished' if ok else 'FAILED'} after {wall[name]:.0f}s")
        if wall:
            chosen = pick(experiments(project))
        failed = [exp_name(seed, arm) for (seed, arm), exp in chosen.items() if exp is None]
        if failed:
            tails = "\n\n".join(f"{name} ({logs_dir / f'{name}.log'}):\n" + "\n".join(
                (logs_dir / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
                for name in failed if (logs_dir / f"{name}.log").exists())
            raise SystemExit(f"experiments that did not finish: {', '.join(failed)}\n{tails}")

        results: dict[tuple[int, str], dict] = {}
        reference_arm = pipeline_arms[0] if pipeline_arms else None
        for seed in seeds:
            for arm in sorted(arms, key=lambda a: a in CONTROLS):  # pipeline arms first: the controls' reference
                figures = exp_figures(project, figures_dir, chosen[(seed, arm)], self_judge=arm == reference_arm)
                reference = results.get((seed, reference_arm)) if reference_arm else None
                results[(seed, arm)] = arm_result(chosen[(seed, arm)], arm, rounds, figures, reference)
    finally:
        reset_workspace(project)
    figures = aggregate(results, arms)
    print_tables(results, figures)
    figures["wall_s"] = {f"{seed}/{arm}": round(wall[exp_name(seed, arm)], 1) for seed, arm in plan
                         if exp_name(seed, arm) in wall}
    print(json.dumps(_finite(figures)))


if __name__ == "__main__":
    main()
