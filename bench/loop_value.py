"""Loop value: does the closed loop beat the seed model, and an equal-budget random control, on the bundled demo?

For each seed and arm it regenerates the demo suite with that seed into a fresh copy of the project, sets the arm's
params (`random`: select.mode random, the same number of flags chosen at random; `nogate`: refine.gate false;
`middo`: params.yaml as it is), and runs the unrolled pipeline's stage commands in order (what `dvc repro` runs).
Stages before select-1 do not depend on the arm: they run once per seed and later arms copy their outputs.
Two control arms run no signals and no teacher, only one round whose D(1) they write themselves before train-2 and
eval-2: `oracle` fixes every planted defect from the ground truth (`middo.demo.oracle`): the ceiling; if it does
not beat eval@1, no selection can. `retrain` keeps D(1) = D(0) and trains with `train.seed` + 1: its gain is pure
training noise, the size a difference between arms must exceed to mean anything.

    .venv/bin/python bench/loop_value.py --seeds 0,1,2 --arms middo,random,nogate [--rounds 1] [--resume] \\
        [--set train.epochs=40 ...] [--rate 0.08] [--workdir DIR]     # add ,oracle,retrain to --arms for the controls

Prints per run and per signal tables, then one JSON line: `gain_vs_seed` (final - eval@1 exact match of the middo
arm, mean over seeds), `gain_vs_random` (final middo - final random), `auroc` (per signal, round 1: complexity =
mean percentile rank of loss_pre and loss_cur vs over_hard + wrong_answer; quality = -quality vs garbled;
diversity = -knn_sim vs rare families), flag precision/recall per signal and arm, accuracy mean/std per arm,
teacher requests/tokens per arm, `defects_left` (defective samples of the final dataset by `middo.demo.audit`, mean
per arm), `auroc_quality_self_judge` (quality as M1 rates itself, `judge.mode: logits`, against garbled prompts,
whatever judge the arms used), and `oracle_gain` / `retrain_gain` (final - eval@1) when those arms ran. The
teacher is the SIMULATED one when params.yaml has teacher.backend: sim.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

from middo.data.schema import read_samples, write_samples
from middo.demo.findings import ground_truth
from middo.demo.generate import SuiteConfig, write_suite
from middo.demo.metrics import auroc, mean_spread
from middo.demo.oracle import oracle_round
from middo.demo.report import demo_summary
from middo.pipeline.build import build_pipeline
from middo.pipeline.config import LoopConfig
from middo.tables import join_by_id

REPO = Path(__file__).resolve().parents[1]
ARMS = {"middo": {}, "random": {"select": {"mode": "random"}}, "nogate": {"refine": {"gate": False}}, "oracle": {},
        "retrain": {}}
CONTROLS = {"oracle": oracle_round, "retrain": lambda dataset, seed: dataset}
"""Arms that write D(1) themselves from D(0) (and the suite seed), with no signals and no teacher."""
CONTROL_STAGES = ("prepare", "pretrain", "train-1", "eval-1"), ("train-2", "eval-2")
"""What a control arm runs (or copies) before writing its own D(1), and after."""
SIGNALS = ("complexity", "quality", "diversity")


def shared_stage(name: str) -> bool:
    """Stages whose outputs do not depend on select/refine params (so every arm of a seed has the same ones)."""
    return name in ("prepare", "pretrain", "train-1", "score-1", "cluster-1", "judge-1", "eval-1")


def parse_overrides(pairs: list[str]) -> dict[str, dict]:
    """`section.key=value` strings (values parsed as YAML, as `dvc exp run -S` does) -> {section: {key: value}}."""
    overrides: dict[str, dict] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        section_name, dot, key = name.partition(".")
        if not sep or not dot or not section_name or not key:
            raise SystemExit(f"--set takes section.key=value, e.g. train.epochs=40 (got {pair!r})")
        overrides.setdefault(section_name, {})[key] = yaml.safe_load(value)
    return overrides


def arm_params(arm: str, rounds: int | None, overrides: dict[str, dict] | None = None) -> dict:
    """params.yaml with `overrides` (--set), then the arm's own, and the round count (always 1 for a control);
    `retrain` adds 1 to train.seed."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for section_name, values in (overrides or {}).items():
        if section_name not in params or not set(values) <= set(params[section_name]):
            raise SystemExit(f"--set {section_name}.{', '.join(values)}: no such setting in params.yaml")
        params[section_name].update(values)
    for section_name, values in ARMS[arm].items():
        params.setdefault(section_name, {}).update(values)
    if arm == "retrain":
        params["train"]["seed"] += 1
    if rounds is not None or arm in CONTROLS:
        params.setdefault("loop", {})["rounds"] = 1 if arm in CONTROLS else rounds
    return params


def arm_stages(arm: str):
    """Which stages of the unrolled pipeline the arm runs (a predicate on the stage name)."""
    if arm in CONTROLS:
        return lambda name: name in CONTROL_STAGES[0] + CONTROL_STAGES[1]
    return lambda name: True


def finished_run(dest: Path, params: dict, suite: SuiteConfig, runs=lambda name: True) -> bool:
    """Whether `dest` holds a complete run made with exactly these params and suite (the output of every stage it
    runs)."""
    params_file = dest / "params.yaml"
    if not params_file.exists() or yaml.safe_load(params_file.read_text(encoding="utf-8")) != params:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        expected = write_suite(scratch, suite)
        found = suite_dir(dest, params)
        if any(not (found / path.name).exists() or (found / path.name).read_bytes() != path.read_bytes()
               for path in expected.values()):
            return False
    rounds = LoopConfig(**params.get("loop", {})).rounds
    stages = [s for name, s in build_pipeline(rounds, params, package_dir=None)["stages"].items() if runs(name)]
    return all((dest / path).exists() for stage in stages for path in stage_paths(stage))


def suite_dir(dest: Path, params: dict) -> Path:
    """Where the project in `dest` reads its suite: the folder of the demo's data.seed (data/demo)."""
    seed_input = params["data"]["seed"]
    seed_input = seed_input[0] if isinstance(seed_input, list) else seed_input
    return dest / Path(seed_input).parent


def project_copy(dest: Path, suite: SuiteConfig, params: dict) -> int:
    """A fresh project in `dest`: stage scripts, the given params.yaml, the suite; returns the rounds."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REPO / "stages", dest / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    write_suite(suite_dir(dest, params), suite)
    return LoopConfig(**params.get("loop", {})).rounds


def stage_paths(stage: dict) -> list[str]:
    """Every output path a stage declares (outs, metrics, plots)."""
    paths = []
    for key in ("outs", "metrics", "plots"):
        paths += [next(iter(entry)) if isinstance(entry, dict) else entry for entry in stage.get(key, [])]
    return paths


def run_pipeline(dest: Path, params: dict, rounds: int, reuse: Path | None, runs=lambda name: True) -> float:
    """Run the stage commands that `runs` names, in order, in `dest`; shared stages are copied from `reuse`."""
    started = time.perf_counter()
    logs = dest / "logs"
    logs.mkdir(exist_ok=True)
    for name, stage in build_pipeline(rounds, params, package_dir=None)["stages"].items():
        if not runs(name):
            continue
        if reuse is not None and shared_stage(name):
            for path in stage_paths(stage):
                source, target = reuse / path, dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
            continue
        argv = shlex.split(stage["cmd"])
        argv[0] = sys.executable  # the cmd says `python`: use this interpreter (the venv)
        stage_start = time.perf_counter()
        with (logs / f"{name}.log").open("w", encoding="utf-8") as log:
            result = subprocess.run(argv, cwd=dest, stdout=log, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            tail = (logs / f"{name}.log").read_text(encoding="utf-8").splitlines()[-15:]
            raise SystemExit(f"stage {name} failed in {dest} (exit {result.returncode}):\n" + "\n".join(tail))
        print(f"  {name:<12} {time.perf_counter() - stage_start:7.1f}s", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def run_control(arm: str, dest: Path, params: dict, seed: int, reuse: Path | None) -> float:
    """A control arm: the shared stages of round 1, its own D(1) from D(0), then train-2 and eval-2."""
    started = time.perf_counter()
    run_pipeline(dest, params, 1, reuse, lambda name: name in CONTROL_STAGES[0])
    write_samples(CONTROLS[arm](read_samples(dest / "data" / "r0" / "dataset.parquet"), seed),
                  dest / "data" / "r1" / "dataset.parquet")
    run_pipeline(dest, params, 1, None, lambda name: name in CONTROL_STAGES[1])
    return time.perf_counter() - started


def self_judge_auroc(dest: Path, params: dict) -> float:
    """AUROC against garbled prompts of round 1's quality as the round model M1 rates itself (`judge.mode: logits`),
    whatever judge the run used; computed once into `data/r1/ratings_self.parquet` and reused."""
    out = dest / "data" / "r1"
    ratings = out / "ratings_self.parquet"
    if not ratings.exists():
        self_params = {**params, "judge": {**params["judge"], "mode": "logits"}}
        (dest / "params_self_judge.yaml").write_text(yaml.safe_dump(self_params, sort_keys=False), encoding="utf-8")
        argv = [sys.executable, "-m", "stages.judge", "--data", "data/r0/dataset.parquet", "--model", "models/r1",
                "--output", str(ratings.relative_to(dest)), "--metrics", "data/r1/judge_self.json",
                "--plot", "data/r1/judge_self_hist.csv", "--params", "params_self_judge.yaml"]
        with (dest / "logs" / "judge-self.log").open("w", encoding="utf-8") as log:
            subprocess.run(argv, cwd=dest, stdout=log, stderr=subprocess.STDOUT, check=True)
    table = join_by_id(pl.read_parquet(ratings).select("id", "quality"), ground_truth(dest), "ratings", "seed set")
    return auroc((-table["quality"]).to_list(), (table["planted"] == "garbled").to_list())


def arm_result(dest: Path) -> dict:
    """Eval accuracy, round-1 signal findings and summed teacher usage of a finished run (NaN findings when the
    run has no signals: the controls)."""
    summary = demo_summary(dest)
    usage: dict[str, float] = {}
    for round_usage in summary["teacher"].values():
        for key, value in round_usage.items():
            usage[key] = usage.get(key, 0) + value
    no_findings = {s: {"auroc": math.nan, "precision": math.nan, "recall": math.nan} for s in SIGNALS}
    first_round = summary["rounds"][min(summary["rounds"])]["signals"] if summary["rounds"] else no_findings
    return {
        "eval_first": summary["eval_first"],
        "eval_final": summary["eval_final"],
        "signals": first_round,
        "teacher": usage,
        "defects": {r: counts["defective"] for r, counts in summary["defects"].items()},
    }


def aggregate(results: dict[tuple[int, str], dict], arms: list[str]) -> dict:
    """The figures over seeds: gains, AUROC per signal, precision/recall per arm, accuracy and teacher per arm."""
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
    out["defects_left"] = {arm: mean_spread(per_seed(arm, lambda r: r["defects"][max(r["defects"])]))["mean"]
                           for arm in arms}
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated suite seeds, e.g. 0,1,2")
    parser.add_argument("--arms", default="middo,random,nogate", help=f"comma-separated arms from {list(ARMS)}")
    parser.add_argument("--rounds", type=int, default=None, help="refinement rounds (default: loop.rounds)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "loop_value")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a params.yaml setting for every arm (repeatable), e.g. train.epochs=40")
    parser.add_argument("--rate", type=float, default=None,
                        help="plant every defect at this rate instead of the suite's default (e.g. 0.08)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs in --workdir that finished with the same params (after an interruption)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms or not seeds:
        parser.error(f"--arms takes names from {list(ARMS)} (got {unknown or arms}); --seeds at least one seed")
    if "retrain" in arms and not any(a not in CONTROLS for a in arms[: arms.index("retrain")]):
        parser.error("--arms: put retrain after a pipeline arm (middo, random or nogate); it takes that arm's "
                     "round-1 model as its eval@1")
    overrides = parse_overrides(args.set)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    results, wall = {}, {}
    for seed in seeds:
        first_dir = None
        suite = SuiteConfig(seed=seed)
        if args.rate is not None:
            suite = SuiteConfig(seed=seed, rates=dict.fromkeys(suite.rates, args.rate))
        for arm in arms:
            dest = args.workdir / f"seed{seed}" / arm
            params = arm_params(arm, args.rounds, overrides)
            if args.resume and finished_run(dest, params, suite, arm_stages(arm)):
                print(f"seed {seed} arm {arm}: reusing the finished run in {dest}", file=sys.stderr, flush=True)
            else:
                print(f"seed {seed} arm {arm}: {dest}", file=sys.stderr, flush=True)
                rounds = project_copy(dest, suite, params)
                if arm in CONTROLS:
                    wall[f"{seed}/{arm}"] = run_control(arm, dest, params, seed, first_dir)
                else:
                    wall[f"{seed}/{arm}"] = run_pipeline(dest, params, rounds, first_dir)
            if arm not in CONTROLS:  # they run only part of round 1, so later arms cannot copy from them
                first_dir = first_dir or dest
            results[(seed, arm)] = arm_result(dest)
            if arm not in CONTROLS and dest == first_dir:
                results[(seed, arm)]["self_judge_auroc"] = self_judge_auroc(dest, params)
    figures = aggregate(results, arms)
    print_tables(results, figures)
    figures["wall_s"] = {key: round(value, 1) for key, value in wall.items()}
    print(json.dumps(_finite(figures)))


if __name__ == "__main__":
    main()
