"""Evaluation: held-out NLL and greedy exact match (left-padded batches) on a tiny model that memorised answers."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from middo.data.schema import sample_id, write_samples
from middo.errors import InputError
from middo.model.config import EvalConfig, ModelConfig, TrainConfig
from middo.model.evaluate import accuracy_by_group, answer_of, evaluate_model, normalise
from middo.model.load import load_model
from middo.model.train import train_sft

QA = [
    ("What is two plus two?", "4"),
    ("Name a color of the sky.", "Blue"),
    ("Which animal barks at the cat?", "A dog"),
]


def qa_samples(pairs, answers=None) -> list[dict]:
    samples = []
    for (question, reply), answer in zip(pairs, answers or [reply for _, reply in pairs], strict=True):
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        samples.append({"id": sample_id(messages), "messages": messages, "meta": json.dumps({"answer": answer})})
    return samples


@pytest.fixture(scope="module")
def memorised(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("memorised")
    config = TrainConfig(epochs=80, lr=5e-3, warmup_ratio=0.0, token_budget=4096, seed=0,
                         gradient_checkpointing=False)
    train_sft(tiny_model_dir, qa_samples(QA), config, ModelConfig(base=str(tiny_model_dir)), out, progress=False)
    return out


def test_exact_match_counts_correct_greedy_answers(memorised):
    model, tokenizer = load_model(memorised, device="cpu")
    # the last answer key differs from what the model learned: 2 of 3 match (batch of 2 mixes prompt lengths)
    samples = qa_samples(QA, answers=["4", " blue ", "a cat"])
    metrics = evaluate_model(model, tokenizer, samples, EvalConfig(gen_batch_size=2, max_new_tokens=8),
                             progress=False)  # fmt: skip
    assert metrics["answer_samples"] == 3
    assert metrics["exact_match"] == pytest.approx(2 / 3)
    assert metrics["nll"] < 1.0 and metrics["samples"] == 3


def test_samples_without_answer_get_nll_only(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    samples = [{**s, "meta": "{}"} for s in qa_samples(QA)]
    metrics = evaluate_model(model, tokenizer, samples, EvalConfig(), progress=False)
    assert metrics["answer_samples"] == 0 and metrics["exact_match"] != metrics["exact_match"]  # NaN
    assert 3.0 < metrics["nll"] < 10.0  # an untrained model is near log(vocab)


def test_normalise_and_answer_parsing():
    assert normalise("  The  Answer\n is 4 ") == "the answer is 4"
    assert answer_of({"id": "a", "meta": '{"answer": 4}'}) == "4"
    assert answer_of({"id": "a", "meta": None}) is None
    with pytest.raises(InputError, match="sample a: its `meta` is a JSON array"):  # not silently "no answer"
        answer_of({"id": "a", "meta": '["4"]'})


def test_eval_stage_end_to_end(memorised, tmp_path):
    from stages.eval import main

    samples = qa_samples(QA)
    frame = pl.DataFrame(
        {"id": [s["id"] for s in samples], "messages": [s["messages"] for s in samples], "source": ["t"] * 3,
         "round": [0] * 3, "parent": [None] * 3, "op": ["seed"] * 3, "meta": [s["meta"] for s in samples]}  # fmt: skip
    )
    write_samples(frame, tmp_path / "eval.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"model": {"base": "unused"}, "eval": {"max_new_tokens": 8}}))
    main(["--model", str(memorised), "--data", str(tmp_path / "eval.parquet"), "--metrics", str(tmp_path / "e.json"),
          "--params", str(tmp_path / "params.yaml")])  # fmt: skip
    metrics = json.loads((tmp_path / "e.json").read_text())
    assert metrics["exact_match"] == 1.0 and metrics["answer_samples"] == 3


def test_exact_match_is_broken_down_by_the_configured_meta_key(memorised):
    model, tokenizer = load_model(memorised, device="cpu")
    samples = qa_samples(QA, answers=["4", "blue", "a cat"])
    for sample, family in zip(samples, ["math", "colour", "colour"], strict=True):
        sample["meta"] = json.dumps({**json.loads(sample["meta"]), "family": family})
    grouped = EvalConfig(max_new_tokens=8, group_by="family")
    metrics = evaluate_model(model, tokenizer, samples, grouped, progress=False)
    assert metrics["exact_match_by_family"] == {"colour": pytest.approx(1 / 2), "math": 1.0}
    plain = evaluate_model(model, tokenizer, samples, EvalConfig(max_new_tokens=8), progress=False)
    assert not any(key.startswith("exact_match_by_") for key in plain)


def test_accuracy_by_group_leaves_out_samples_without_the_key():
    samples = [{"id": "a", "meta": '{"family": "x"}'}, {"id": "b", "meta": "{}"}, {"id": "c", "meta": None}]
    assert accuracy_by_group(samples, [True, False, False], "family") == {"x": 1.0}
    assert accuracy_by_group(samples[1:], [True, True], "family") == {}
