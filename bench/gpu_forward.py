"""GPU benchmark of the forward stages: bf16 tokens/s of the score pass and of the local `logits` judge, against
one plain forward pass of the model body over the same samples, on the ~0.46B Llama of `bench/gpu_train.py`
(random weights, built from a config). Run by `bench/gpu.sh` on one GPU (about a minute on one H200).

- plain: the model body over each sample's chat tokens (length-sorted batches under `--token-budget`);
- score: `middo.model.forward.score_forward` as the score stage runs it for Mr (losses of the response tokens
  through the LM head, and the prompt embeddings, from one pass);
- judge: `middo.signals.judge_local.rate_local` in `logits` mode (each sample's six rating prompts as one tree).

MFU = tokens/s x (2 N + 4 L d s) / peak, the forward third of the PaLM paper's model FLOPs per token.

    python bench/gpu_forward.py [--samples 2048] [--length 1024] [--device cuda]

`--device cpu --samples 8 --length 128` runs the same code on a CPU (slowly: for checking the script).
Prints figures on stderr and ends with one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diagnose import floor_pass
from gpu_train import SHAPE, build_base, samples

from middo.model.forward import score_forward
from middo.model.load import load_model
from middo.signals.judge_local import rate_local


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def synchronised(device: str, function, *args, **kwargs):
    """(value, seconds) of a call, the device's queued work included."""
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    value = function(*args, **kwargs)
    if device == "cuda":
        torch.cuda.synchronize()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--length", type=int, default=1024, help="tokens per sample")
    parser.add_argument("--token-budget", type=int, default=65536, help="tokens per batch")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/middo-gpu-bench"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu_forward.py needs a CUDA GPU (or --device cpu to check the script)")
    base = build_base(args.workdir)
    parameters = json.loads((base / "middo_gpu_bench.json").read_text(encoding="utf-8"))["parameters"]
    model, tokenizer = load_model(base, device=args.device)  # bf16 on a GPU, fp32 on a CPU
    dtype = next(model.parameters()).dtype
    rows = samples(args.samples, args.length)
    floor_pass(model, tokenizer, rows[:8], args.length, args.token_budget)  # warm-up: kernels, allocator
    tokens, plain_s = synchronised(args.device, floor_pass, model, tokenizer, rows, args.length, args.token_budget)
    _, score_s = synchronised(args.device, score_forward, model, tokenizer, rows, args.token_budget,
                              max_length=args.length, progress=False)
    rated, judge_s = synchronised(args.device, rate_local, model, tokenizer, rows, args.token_budget,
                                  generate=False, max_length=args.length + 512, progress=False)
    flops = 2 * parameters + 4 * SHAPE["num_hidden_layers"] * SHAPE["hidden_size"] * args.length
    figures = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "dtype": str(dtype),
               "parameters": parameters, "samples": len(rows), "tokens": tokens, "judge_tokens": rated.tokens,
               "plain_tok_per_s": tokens / plain_s, "score_tok_per_s": tokens / score_s,
               "judge_tok_per_s": rated.tokens / judge_s, "score_vs_plain": score_s / plain_s,
               "judge_vs_plain": judge_s / plain_s, "plain_mfu": tokens / plain_s * flops / (args.peak_tflops * 1e12),
               "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None}
    for key, value in figures.items():
        say(f"[gpu forward] {key:>16}: " + (f"{value:.4g}" if isinstance(value, float) else str(value)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
