"""The logits judge: expected scores of trained tiny judges, the shared-prefix pass, the score-token math."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from judge_helpers import make_samples, trained_judge

from middo.data.schema import response_text
from middo.errors import ConfigError
from middo.model.config import ModelConfig
from middo.model.load import load_model
from middo.signals import judge_local
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge, judge_samples
from middo.signals.judge_encode import encode_ratings
from middo.signals.judge_local import rate_local, shared_prefix
from middo.signals.judge_logits import ScoreTokens, expected_scores, score_tokens
from middo.signals.judge_prompts import ASPECTS, load_judge_prompts, prompt_text

CPU = ModelConfig(base="unused", device="cpu")


@pytest.mark.parametrize("answer", ["7", "2"])
def test_judge_trained_on_one_answer_rates_near_it(tiny_model_dir, tmp_path_factory, answer):
    judge = trained_judge(tiny_model_dir, answer, tmp_path_factory.mktemp(f"judge{answer}"))
    samples = make_samples(6)  # the judge saw the rating prompts of the first sample only
    result = judge_samples(samples, Judge(JudgeConfig(mode="logits", token_budget=4096), judge, CPU))
    assert result.table["id"].to_list() == [s["id"] for s in samples]
    ratings = result.table.select(ASPECTS).to_numpy()
    np.testing.assert_allclose(ratings, float(answer), atol=0.5)
    np.testing.assert_allclose(result.table["quality"].to_numpy(), ratings.mean(axis=1))
    assert result.metrics["nan_ratings"] == 0 and result.metrics["score_mass_mean"] > 0.2
    generated = judge_samples(samples[:3], Judge(JudgeConfig(mode="generate", token_budget=4096), judge, CPU))
    assert np.all(generated.table.select(ASPECTS).to_numpy() == float(answer))
    assert generated.metrics["parse_failures"] == 0


def _full_prompt_ids(tokenizer, prompts, sample) -> list[list[int]]:
    """The six rating prompts tokenised whole, each on its own (no prefix sharing)."""
    prompt, response = prompt_text(sample["messages"]), response_text(sample["messages"])
    texts = [tokenizer.apply_chat_template(prompts.rating_messages(prompt, response, aspect), tokenize=False,
                                           add_generation_prompt=True) for aspect in ASPECTS]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


@pytest.mark.parametrize("sees_response", [False, True])
def test_shared_prefix_pass_equals_six_full_sequences(tiny_model_dir, sees_response, monkeypatch):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    prompts = load_judge_prompts(prompt_sees_response=sees_response)
    samples = make_samples(7)
    tokens = score_tokens(tokenizer)
    reference = np.zeros((len(samples), len(ASPECTS)))
    for i, sample in enumerate(samples):
        full = _full_prompt_ids(tokenizer, prompts, sample)
        encoded = encode_ratings(tokenizer, sample["id"], sample["messages"], 1000, prompts=prompts)
        assert [encoded.prompt_ids(j) for j in range(len(ASPECTS))] == full
        assert len(encoded.segments[0]) > 20  # the six prompts really share the sample block
        # every token that several prompts share at the same place is run once: one per distinct prompt prefix
        assert encoded.cost() == len({tuple(ids[:end]) for ids in full for end in range(1, len(ids) + 1)})
        root = len(encoded.segments[0])  # what all six prompts share; past it, question openings are shared too
        assert encoded.cost() < sum(map(len, full)) - 5 * root
        for j, ids in enumerate(full):
            ids = ids + [tokens.digits[1]]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0]
            n = len(ids) - 1
            reference[i, j] = float(expected_scores(logits[n - 1 : n], logits[n : n + 1], tokens)[0][0])
    encoded = [encode_ratings(tokenizer, s["id"], s["messages"], 1000, prompts=prompts) for s in samples]
    shared = shared_prefix(model, encoded).length
    assert shared > 20  # the instructions are computed once for all samples
    for budget in (300, 100_000):  # different batch compositions
        result = rate_local(model, tokenizer, samples, budget, generate=False, progress=False, prompts=prompts)
        assert result.ids == [s["id"] for s in samples]
        np.testing.assert_allclose(result.scores, reference, atol=1e-5)
        # each sample's tree and one reply position per question, the instructions once
        assert result.tokens == shared + sum(e.cost() - shared + len(ASPECTS) for e in encoded)
    monkeypatch.setattr(judge_local, "ENCODE_CHUNK", 3)  # samples tokenised 3 at a time: 3 chunks, as many calls
    chunked = rate_local(model, tokenizer, samples, 300, generate=False, progress=False, prompts=prompts)
    assert chunked.ids == [s["id"] for s in samples]
    np.testing.assert_allclose(chunked.scores, reference, atol=1e-5)


def test_long_samples_are_cut_to_fit_the_context(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    long = make_samples(2)
    long[1] = {"id": "long", "messages": [{"role": "user", "content": "the cat sees a dog. " * 400},
                                          {"role": "assistant", "content": "a river. " * 300}]}
    encoded = encode_ratings(tokenizer, "long", long[1]["messages"], 400)
    assert encoded.truncated and all(len(encoded.prompt_ids(j)) <= 400 for j in range(len(ASPECTS)))
    result = rate_local(model, tokenizer, long, 4096, generate=False, max_length=400, progress=False)
    assert result.truncated == 1 and np.isfinite(result.scores).all()


def test_score_tokens_of_a_tokenizer_that_splits_ten(tiny_model_dir):
    _, tokenizer = load_model(tiny_model_dir, device="cpu")
    tokens = score_tokens(tokenizer)
    assert len(set(tokens.digits)) == 10
    assert tokens.two_step == (tokens.ten is None)
    context = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                            add_generation_prompt=True)
    assert tokenizer.decode([tokens.digits[7]]) == "7"
    ten = [tokens.ten] if tokens.ten is not None else [tokens.digits[1], tokens.ten_zero]
    assert tokenizer(context + "10", add_special_tokens=False)["input_ids"][-len(ten):] == ten


def _logits(probabilities: dict[int, float], vocab: int = 16) -> torch.Tensor:
    row = torch.full((1, vocab), 1e-12)
    for token, p in probabilities.items():
        row[0, token] = p
    return row.log()


def test_expected_score_with_ten_as_one_token():
    tokens = ScoreTokens(digits=tuple(range(10)), ten=10, ten_zero=None)
    score, mass = expected_scores(_logits({7: 0.5, 10: 0.25, 12: 0.25}), None, tokens)
    assert float(mass[0]) == pytest.approx(0.75, abs=1e-6)
    assert float(score[0]) == pytest.approx((7 * 0.5 + 10 * 0.25) / 0.75, abs=1e-6)


def test_expected_score_with_ten_as_one_then_zero():
    tokens = ScoreTokens(digits=tuple(range(10)), ten=None, ten_zero=0)
    first = _logits({1: 0.6, 9: 0.4})
    second = _logits({0: 0.75, 11: 0.25})  # after a `1`: 75% `0` (so "10"), 25% end of reply
    score, mass = expected_scores(first, second, tokens)
    expected = (1 * 0.6 * 0.25 + 10 * 0.6 * 0.75 + 9 * 0.4) / 1.0
    assert float(mass[0]) == pytest.approx(1.0, abs=1e-6)
    assert float(score[0]) == pytest.approx(expected, abs=1e-6)
    assert not math.isnan(float(score[0]))


def _tokenizer_splitting(tiny_model_dir, label: str, written: str):
    """The tiny judge's tokenizer, rebuilt so that the text `label` is tokenised as `written` (a normalizer)."""
    from tokenizers import normalizers

    _, tokenizer = load_model(tiny_model_dir, device="cpu")
    tokenizer.backend_tokenizer.normalizer = normalizers.Replace(label, written)
    return tokenizer


def test_a_qwen_style_tokenizer_reads_ten_as_one_then_zero(tiny_model_dir):
    # the tiny tokenizer writes every digit alone, as Qwen's does: "10" is two tokens
    _, tokenizer = load_model(tiny_model_dir, device="cpu")
    assert len(tokenizer("10", add_special_tokens=False)["input_ids"]) == 2
    tokens = score_tokens(tokenizer)
    assert tokens.two_step and tokens.ten is None
    assert [tokenizer.decode([tokens.digits[1]]), tokenizer.decode([tokens.ten_zero])] == ["1", "0"]


@pytest.mark.parametrize(("label", "written"), [("7", "7~"), ("10", "1~0")])
def test_a_score_label_of_several_tokens_fails_naming_it(tiny_model_dir, label, written):
    tokenizer = _tokenizer_splitting(tiny_model_dir, label, written)
    assert len(tokenizer(label, add_special_tokens=False)["input_ids"]) > len(label)
    with pytest.raises(ConfigError, match=rf"score label '{label}' is \d tokens .*set judge\.mode to `generate`"):
        score_tokens(tokenizer)


def test_an_attention_kernel_without_4d_masks_fails_naming_it(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    model.config._attn_implementation = "flash_attention_2"  # takes no 4D mask: the tree would be silently wrong
    with pytest.raises(ConfigError, match="'flash_attention_2' attention does not take"):
        rate_local(model, tokenizer, make_samples(2), 4096, generate=False, progress=False)
