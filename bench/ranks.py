"""Wall time of the score stage as 1 process against N data-parallel processes (torchrun, CPU, gloo).

    .venv/bin/python bench/ranks.py [--n 2000] [--processes 2] [--threads 2]

The demo's tiny model (built here from the demo corpus, random weights: timing does not depend on them) scores
`--n` demo seed samples (the generated suite, as bench/diagnose.py) through `python -m stages.score` with the repo's
params.yaml settings, as 1 process with `threads / processes` intra-op threads (at least 1), 1 process with all
`--threads`, and `--processes` processes with `threads / processes` each (the same cores in all). The speedups are
against the faster one-process run (on a busy machine, OpenMP threads that spin-wait for taken cores can make the
all-threads run the slower). `seconds` is the stage's own figure (the
slowest process's model loads and forward passes); `wall` adds process start-up, imports and writing the tables.
The two runs' tables are compared too (losses relative, embeddings cosine), as in tests/test_ranks.py.
Ends with one JSON line: `speedup_wall`, `speedup_seconds`, and the parts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from middo.data.schema import SAMPLE_SCHEMA, sample_id
from middo.demo.generate import SuiteConfig, seed_rows
from middo.model.build import init_base_model
from middo.signals.embeddings import load_embeddings

REPO = Path(__file__).resolve().parents[1]


def write_inputs(work: Path, n: int) -> tuple[Path, Path]:
    """(dataset, params.yaml) for the score stage on `n` demo samples and the demo's tiny model."""
    model = init_base_model(work / "tiny", [REPO / "data" / "demo" / "corpus.txt"], size="tiny", seed=0)
    rows = [{"id": sample_id(row["messages"]), "messages": row["messages"], "source": "demo", "round": 0,
             "parent": None, "op": "seed", "meta": "{}"} for row in seed_rows(SuiteConfig(n_seed=n))]  # fmt: skip
    pl.DataFrame(rows, schema=SAMPLE_SCHEMA).write_parquet(work / "dataset.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["model"] = {**params["model"], "base": str(model), "device": "cpu"}
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return work / "dataset.parquet", work / "params.yaml"


def run_score(work: Path, name: str, processes: int, threads: int) -> dict:
    """Run the score stage; its metrics plus the command's wall time."""
    data, params = work / "dataset.parquet", work / "params.yaml"
    model = yaml.safe_load(params.read_text())["model"]["base"]
    out = work / name
    args = ["-m", "stages.score", "--data", str(data), "--base", model, "--model", model, "--output",
            str(out / "scores.parquet"), "--embeddings", str(out / "emb"), "--metrics", str(out / "score.json"),
            "--params", str(params)]  # fmt: skip
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    launcher = [sys.executable] if processes == 1 else [torchrun, "--standalone", "--nproc-per-node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    started = time.perf_counter()
    subprocess.run([*launcher, *args], cwd=REPO, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    return {**json.loads((out / "score.json").read_text()), "wall": wall}


def agreement(work: Path, first: str, second: str) -> dict:
    """Largest relative loss difference and smallest embedding cosine between two runs' outputs."""
    a, b = (pl.read_parquet(work / name / "scores.parquet") for name in (first, second))
    assert a["id"].to_list() == b["id"].to_list()
    loss = max(float(np.nanmax(np.abs(a[c] - b[c]) / np.abs(a[c]))) for c in ("loss_pre", "loss_cur"))
    (_, u), (_, v) = load_embeddings(work / first / "emb"), load_embeddings(work / second / "emb")
    cosine = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return {"max_loss_rel_diff": loss, "min_embedding_cosine": float(cosine.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="samples to score")
    parser.add_argument("--processes", type=int, default=2, help="data-parallel processes")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads in all (the cores to use)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="middo-ranks-") as scratch:
        work = Path(scratch)
        write_inputs(work, args.n)
        per_process = max(1, args.threads // args.processes)
        runs = {"one_thread": run_score(work, "one_thread", 1, per_process),
                "one_all_threads": run_score(work, "one", 1, args.threads),
                "many": run_score(work, "many", args.processes, per_process)}  # fmt: skip
        one = min(runs["one_thread"], runs["one_all_threads"], key=lambda run: run["wall"])  # the better baseline
        many = runs["many"]
        result = {
            "samples": one["samples"], "processes": many["processes"], "threads": args.threads,
            "tokens": one["tokens_scored"],
            **{f"wall_{name}": run["wall"] for name, run in runs.items()},
            **{f"seconds_{name}": run["seconds"] for name, run in runs.items()},
            "speedup_wall": one["wall"] / many["wall"], "speedup_seconds": one["seconds"] / many["seconds"],
            **agreement(work, "one", "many"),
        }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
