"""Shared by the judge tests: small samples and tiny judges trained (once per session) to give one rating."""

from __future__ import annotations

from pathlib import Path

from middo.data.schema import sample_id
from middo.model.config import ModelConfig, TrainConfig
from middo.model.train import train_sft
from middo.signals.judge_prompts import load_judge_prompts


def make_samples(n: int) -> list[dict]:
    """`n` small chat samples (some multi-turn) with real ids."""
    samples = []
    for i in range(n):
        messages = [{"role": "user", "content": f"the cat sees a dog {i}. " * (1 + i % 3) + "why?"}]
        if i % 4 == 3:
            messages += [{"role": "assistant", "content": "the dog likes a river."}]
            messages += [{"role": "user", "content": "and?"}]
        messages.append({"role": "assistant", "content": "the river likes a house, " * (1 + i % 3) + str(i)})
        samples.append({"id": sample_id(messages), "messages": messages})
    return samples


_TRAINED: dict[tuple[str, str], Path] = {}


def trained_judge(base: Path, answer: str, out_dir: Path) -> Path:
    """A copy of `base` trained with `train_sft` to reply `answer` to the six rating prompts of one sample.

    Trained once per test session: a later call with the same base and answer returns the first model dir.
    """
    if (str(base), answer) in _TRAINED:
        return _TRAINED[str(base), answer]
    rows = [
        {"id": f"r{j}", "messages": [*messages, {"role": "assistant", "content": answer}]}
        for j, messages in enumerate(load_judge_prompts().sample_rating_messages(make_samples(1)[0]["messages"]))
    ]
    config = TrainConfig(epochs=30, lr=5e-3, warmup_ratio=0.0, token_budget=8192, gradient_checkpointing=False)
    train_sft(base, rows, config, ModelConfig(base=str(base), device="cpu"), out_dir, progress=False)
    _TRAINED[str(base), answer] = out_dir
    return out_dir
