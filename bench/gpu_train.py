"""GPU benchmark of the train stage: bf16 tokens/s, MFU and peak GPU memory of `middo.model.train.train_sft` (TRL's
SFTTrainer) on a ~0.46B Llama built from a config (random weights), full fine-tune and LoRA, each with and without
gradient checkpointing. Run by `bench/gpu.sh` on one GPU (under 8 minutes on one H200).

The base model: a tokenizer trained on data/demo/corpus.txt (for its chat template), and a Llama of hidden 1280,
24 layers, 20 heads (4 KV heads), MLP 3456, vocabulary 32,768, tied embeddings (455M parameters). Samples: 1,024-token
conversations (a quarter prompt) of corpus text. Every arm runs in a fresh child process.

MFU = tokens/s x (6 N + 12 L d s) / peak, the PaLM paper's model FLOPs per token: N parameters (the tied embedding
counted once, as the LM head's matmul), L layers, d hidden size, s sequence length; recomputation under gradient
checkpointing is not counted (model FLOPs, not hardware FLOPs). LoRA's FLOPs are counted as a full fine-tune's
(frozen weights still take both backward matmuls for the activations' gradient but not the weights' one: 4 N of 6 N
are real), so its MFU is an upper bound. Peak: --peak-tflops (989: H100/H200 dense bf16).

    python bench/gpu_train.py                 # all four arms
    python bench/gpu_train.py --arms full     # one arm

Prints figures on stderr and ends with one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"hidden_size": 1280, "intermediate_size": 3456, "num_hidden_layers": 24, "num_attention_heads": 20,
         "num_key_value_heads": 4, "vocab_size": 32768, "max_position_embeddings": 4096}  # fmt: skip
ARMS = {
    "full": {"lora": None, "gradient_checkpointing": False},
    "full_checkpointing": {"lora": None, "gradient_checkpointing": True},
    "lora": {"lora": {"r": 16, "alpha": 32, "target_modules": "all-linear"}, "gradient_checkpointing": False},
    "lora_checkpointing": {"lora": {"r": 16, "alpha": 32, "target_modules": "all-linear"},
                           "gradient_checkpointing": True},
}  # fmt: skip


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def build_base(workdir: Path) -> Path:
    """The demo corpus's tokenizer with a ~0.46B Llama of SHAPE (random weights, saved in bf16)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from middo.model.build import init_base_model

    base = workdir / "base"
    if (base / "middo_gpu_bench.json").exists():
        return base
    init_base_model(base, [ROOT / "data/demo/corpus.txt"], size="tiny", seed=0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LlamaConfig(**SHAPE, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(base, safe_serialization=True)
    info = {**SHAPE, "parameters": sum(p.numel() for p in model.parameters())}  # tied embedding counted once
    (base / "middo_gpu_bench.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
    return base


def samples(n: int, length: int) -> list[dict]:
    """`n` conversations of about `length` tokens of corpus text, a quarter of it the prompt."""
    lines = (ROOT / "data/demo/corpus.txt").read_text(encoding="utf-8").splitlines()
    words_per_sample = length * 10 // 23  # the demo tokenizer takes about 2.3 tokens per word of this corpus
    rows = []
    for index in range(n):
        words = " ".join(lines[(index * 37 + k) % len(lines)] for k in range(words_per_sample // 6)).split()
        cut = len(words) // 4
        messages = [{"role": "user", "content": " ".join(words[:cut])},
                    {"role": "assistant", "content": " ".join(words[cut:words_per_sample])}]  # fmt: skip
        rows.append({"id": f"s{index}", "messages": messages})
    return rows


def child(spec: dict) -> dict:
    """Train one arm; tokens/s, MFU and peak memory."""
    import torch

    from middo.model.config import LoraSettings, ModelConfig, TrainConfig
    from middo.model.train import train_sft

    arm = ARMS[spec["arm"]]
    lora = LoraSettings(**arm["lora"]) if arm["lora"] else None
    config = TrainConfig(epochs=1, lr=2e-5, warmup_ratio=0.03, token_budget=spec["token_budget"],
                         max_steps=spec["steps"], gradient_checkpointing=arm["gradient_checkpointing"], lora=lora,
                         save_steps=0, bf16=True)  # fmt: skip
    model_config = ModelConfig(base=spec["base"], max_length=spec["length"], device="cuda")
    rows = samples(spec["samples"], spec["length"])
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    metrics = train_sft(spec["base"], rows, config, model_config, Path(spec["output"]), progress=False)
    wall = time.perf_counter() - started
    layers, hidden = SHAPE["num_hidden_layers"], SHAPE["hidden_size"]
    flops_per_token = 6 * spec["parameters"] + 12 * layers * hidden * spec["length"]
    tokens_per_s = metrics["tokens_per_s"]
    return {"arm": spec["arm"], "tokens_per_s": tokens_per_s, "steps": metrics["steps"],
            "seconds": metrics["seconds"], "call_s": wall, "loss_first": metrics["loss_first"],
            "loss_last": metrics["loss_last"], "mfu": tokens_per_s * flops_per_token / (spec["peak_tflops"] * 1e12),
            "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30, "gpu": torch.cuda.get_device_name()}  # fmt: skip


def run_arm(spec: dict) -> dict:
    """One arm in a fresh interpreter."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    if proc.returncode != 0:
        say(proc.stderr[-4000:])
        return {"arm": spec["arm"], "error": f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, among {', '.join(ARMS)}")
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per arm")
    parser.add_argument("--length", type=int, default=1024, help="tokens per sample")
    parser.add_argument("--token-budget", type=int, default=32768, help="tokens per micro-batch")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/middo-gpu-bench"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_train.py needs a CUDA GPU")
    base = build_base(args.workdir)
    parameters = json.loads((base / "middo_gpu_bench.json").read_text(encoding="utf-8"))["parameters"]
    n_samples = args.steps * args.token_budget // args.length + args.token_budget // args.length
    results = []
    for arm in args.arms.split(","):
        spec = {"arm": arm, "base": str(base), "output": str(args.workdir / f"out-{arm}"), "steps": args.steps,
                "length": args.length, "token_budget": args.token_budget, "samples": n_samples,
                "parameters": parameters, "peak_tflops": args.peak_tflops}  # fmt: skip
        result = run_arm(spec)
        results.append(result)
        if "error" in result:
            say(f"[gpu] {arm:<20} failed: {result['error']}")
            continue
        say(f"[gpu] {arm:<20} {result['tokens_per_s']:9.0f} tok/s  MFU {result['mfu']:.1%}  peak "
            f"{result['peak_gpu_gb']:.1f} GiB  {result['steps']} steps in {result['seconds']:.1f} s  loss "
            f"{result['loss_first']:.3f} -> {result['loss_last']:.3f}")  # fmt: skip
    print(json.dumps({"parameters": parameters, "shape": SHAPE, "length": args.length,
                      "token_budget": args.token_budget, "peak_tflops": args.peak_tflops, "arms": results}))


if __name__ == "__main__":
    main()
