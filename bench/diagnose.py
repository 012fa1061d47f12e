"""Wall time of the three signals (score + cluster + judge) against the reference procedure, and the floor.

    .venv/bin/python bench/diagnose.py [--n 2000] [--ref-n 200] [--base DIR [--model DIR]] [--data sharegpt]

Ours: `middo.signals.loss.score_samples` (M0 losses; Mr losses and prompt embeddings from one pass; length-sorted
batches under a token budget), `middo.signals.knn.knn_table` (faiss), and the `logits` judge (the instructions
once per call, each sample's six prompts as one token tree in one pass, no generation).

Reference (the procedure of the Middo scripts): losses in file-order padded batches of 8 under each model with
full-vocabulary logits, embeddings one sample at a time in a separate pass, a dense N x N similarity matrix, and
six generated ratings of up to 64 new tokens each parsed by their first number. Its per-sample stages run on the
first `--ref-n` samples and are scaled linearly to N (they are linear in N); the N x N step runs on all N.

Floor: one plain forward pass of the model body over every sample's tokens (length-sorted, same budget); `tokens`
counts them, `judge_tokens` the tokens the judge puts through the model (its instructions once, each sample's
prompt block, response block and six questions).
Without `--base/--model` both models are the small (~5M) architecture built here (random weights: the reference
generation then runs its full 64 tokens per rating, as for a model that ignores the answer format).
Samples: `--n` of the demo suite (36 tokens on average), or with `--data sharegpt` the first `--n` ShareGPT V3
conversations that ingestion keeps and that fit `--max-length` tokens whole (no path cuts them, so every
procedure sees the same conversations).
Ends with one JSON line: `speedup` (reference / ours) and `floor_ratio` (ours / floor), plus the parts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ingest import sharegpt_samples

from middo.data.schema import sample_id
from middo.demo.generate import SuiteConfig, seed_rows
from middo.model.batching import budget_batches, pad_left, pad_right
from middo.model.build import init_base_model
from middo.model.config import EmbedConfig, ModelConfig
from middo.model.encode import encode_chat
from middo.model.load import load_model
from middo.signals.config import ClusterConfig, ScoreConfig
from middo.signals.judge_local import rate_local
from middo.signals.judge_parse import first_number
from middo.signals.judge_prompts import load_judge_prompts
from middo.signals.knn import knn_table
from middo.signals.loss import score_samples

BUDGET = 8192
REF_BATCH = 8
REF_NEW_TOKENS = 64


def demo_samples(n: int) -> list[dict]:
    rows = seed_rows(SuiteConfig(n_seed=max(n, 100)))[:n]
    return [{"id": sample_id(row["messages"]), "messages": row["messages"]} for row in rows]


def real_samples(n: int, tokenizer, max_length: int) -> list[dict]:
    """The first `n` kept ShareGPT conversations whose chat tokens fit `max_length` whole."""
    fitting = []
    for sample in sharegpt_samples(20 * n):
        if not encode_chat(tokenizer, sample["id"], sample["messages"], max_length).truncated:
            fitting.append(sample)
        if len(fitting) == n:
            return fitting
    raise SystemExit(f"only {len(fitting)} of the first {20 * n} conversations fit {max_length} tokens")


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - started


@torch.inference_mode()
def ref_losses(model, tokenizer, samples, max_length):
    """Reference: file order, batches of 8, full logits, masked cross-entropy."""
    out = []
    for start in range(0, len(samples), REF_BATCH):
        rows = [encode_chat(tokenizer, s["id"], s["messages"], max_length) for s in samples[start : start + REF_BATCH]]
        ids = pad_right([r.input_ids for r in rows], tokenizer.pad_token_id)
        attention = pad_right([[1] * len(r) for r in rows], 0)
        logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1]
        mask = pad_right([r.assistant_mask for r in rows], False)[:, 1:]
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        out.extend(((nll * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist())
    return out


@torch.inference_mode()
def ref_embeddings(model, tokenizer, samples, max_length):
    """Reference: one prompt-only pass per sample."""
    vectors = []
    for sample in samples:
        row = encode_chat(tokenizer, sample["id"], sample["messages"], max_length)
        hidden = model(input_ids=torch.tensor([row.input_ids[: row.prompt_len]]), output_hidden_states=True)
        vectors.append(hidden.hidden_states[-1][0].mean(0).numpy())
    return np.stack(vectors)


def ref_knn(vectors, k=10):
    """Reference: dense N x N cosine matrix, full sort per row."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :k]
    return np.take_along_axis(sims, top, axis=1).mean(1)


@torch.inference_mode()
def ref_judge(model, tokenizer, samples):
    """Reference: six generated ratings per sample (batches of 8 prompts, file order), first number parsed."""
    prompts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
               for s in samples for m in load_judge_prompts().sample_rating_messages(s["messages"])]
    ratings = []
    for start in range(0, len(prompts), REF_BATCH):
        rows = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start : start + REF_BATCH]]
        ids, attention = pad_left(rows, tokenizer.pad_token_id)
        out = model.generate(input_ids=ids, attention_mask=attention, max_new_tokens=REF_NEW_TOKENS, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        ratings.extend(first_number(tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True)) for row in out)
    return ratings


@torch.inference_mode()
def floor_pass(model, tokenizer, samples, max_length=1024, budget=BUDGET):
    """One plain forward pass of the model body over every sample's chat tokens (tokenising included,
    length-sorted batches under `budget`); returns the tokens."""
    rows = [encode_chat(tokenizer, s["id"], s["messages"], max_length).input_ids for s in samples]
    body, device = getattr(model, model.base_model_prefix), next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for batch in budget_batches([len(r) for r in rows], budget):
        chunk = [rows[i] for i in batch]
        attention = pad_right([[1] * len(r) for r in chunk], 0).to(device)
        body(input_ids=pad_right(chunk, pad_id).to(device), attention_mask=attention)
    return sum(map(len, rows))


def models(args, workdir: Path) -> tuple[Path, Path]:
    if args.base:
        return Path(args.base), Path(args.model or args.base)
    corpus = Path("data/demo/corpus.txt")
    built = init_base_model(workdir / "small", [corpus], size="small")
    return built, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--ref-n", type=int, default=200, help="samples the per-sample reference stages run on")
    parser.add_argument("--base", help="base model dir (default: build the small model)")
    parser.add_argument("--model", help="round model dir (default: the same as --base)")
    parser.add_argument("--data", choices=("demo", "sharegpt"), default="demo")
    parser.add_argument("--max-length", type=int, default=1024, help="context cap of every pass")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, current = models(args, Path(tmp))
        model_cfg = ModelConfig(base=str(base), device="cpu", max_length=args.max_length)
        model, tokenizer = load_model(current, device="cpu")
        samples = demo_samples(args.n) if args.data == "demo" else real_samples(args.n, tokenizer, args.max_length)
        ref_samples = samples[: args.ref_n]
        scale = len(samples) / len(ref_samples)
        length = args.max_length

        score, t_score = timed(score_samples, samples, base, current, model_cfg, ScoreConfig(token_budget=BUDGET),
                              EmbedConfig())
        ids = score.table["id"].to_list()
        _, t_cluster = timed(knn_table, ids, score.embeddings, ClusterConfig())
        rated, t_judge = timed(rate_local, model, tokenizer, samples, BUDGET, generate=False, max_length=length,
                               progress=False)
        n_tokens, t_floor = timed(floor_pass, model, tokenizer, samples, length)

        base_model, _ = load_model(base, device="cpu")
        _, r_loss_pre = timed(ref_losses, base_model, tokenizer, ref_samples, length)
        _, r_loss_cur = timed(ref_losses, model, tokenizer, ref_samples, length)
        _, r_embed = timed(ref_embeddings, model, tokenizer, ref_samples, length)
        _, r_knn = timed(ref_knn, score.embeddings)
        _, r_judge = timed(ref_judge, model, tokenizer, ref_samples)

    ours = t_score + t_cluster + t_judge
    reference = (r_loss_pre + r_loss_cur + r_embed + r_judge) * scale + r_knn
    figures = {
        "data": args.data, "n": len(samples), "ref_n": len(ref_samples), "tokens": n_tokens,
        "judge_tokens": rated.tokens, "threads": torch.get_num_threads(),
        "ours_s": ours, "score_s": t_score, "cluster_s": t_cluster, "judge_s": t_judge,
        "reference_s": reference, "ref_losses_s": (r_loss_pre + r_loss_cur) * scale, "ref_embed_s": r_embed * scale,
        "ref_knn_s": r_knn, "ref_judge_s": r_judge * scale, "floor_s": t_floor,
        "speedup": reference / ours, "floor_ratio": ours / t_floor,
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value:.3f}" if isinstance(value, float) else f"{key:>28}: {value}")
    print(json.dumps({key: round(v, 4) if isinstance(v, float) else v for key, v in figures.items()}))


if __name__ == "__main__":
    main()
