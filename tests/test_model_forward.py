"""One-pass forward on the tiny model: batch-invariant losses, fused embeddings, left truncation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from middo.model import forward
from middo.model.config import EmbedConfig
from middo.model.encode import encode_chat
from middo.model.forward import body_and_head, score_forward
from middo.model.load import load_model


def _samples(n: int) -> list[dict]:
    out = []
    for i in range(n):
        messages = [{"role": "user", "content": "the cat sees a dog. " * (1 + i % 6) + f"question {i}"}]
        if i % 4 == 3:  # multi-turn
            messages.append({"role": "assistant", "content": "the dog likes a river."})
            messages.append({"role": "user", "content": "why?"})
        messages.append({"role": "assistant", "content": "the answer is " + "a house, " * (1 + i % 5) + str(i)})
        out.append({"id": f"s{i:02d}", "messages": messages})
    return out


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def test_batched_losses_match_single_sample_losses(tiny):
    model, tokenizer = tiny
    samples = _samples(13)
    singles = [score_forward(model, tokenizer, [s], token_budget=10_000, progress=False) for s in samples]
    for budget in (64, 300, 10_000):  # different batch compositions
        result = score_forward(model, tokenizer, samples, token_budget=budget, progress=False)
        assert result.ids == [s["id"] for s in samples]
        assert np.all(result.n_tokens > 0)
        np.testing.assert_allclose(result.loss, [r.loss[0] for r in singles], atol=1e-4, rtol=0)
        np.testing.assert_allclose(result.embeddings, np.stack([r.embeddings[0] for r in singles]), atol=1e-4)
    shuffled = score_forward(model, tokenizer, samples[::-1], token_budget=300, progress=False)
    assert shuffled.ids == [s["id"] for s in samples[::-1]]
    np.testing.assert_allclose(shuffled.loss[::-1], [r.loss[0] for r in singles], atol=1e-4, rtol=0)


def test_loss_equals_reference_cross_entropy(tiny):
    model, tokenizer = tiny
    sample = _samples(4)[3]
    encoded = encode_chat(tokenizer, sample["id"], sample["messages"], max_length=1024)
    ids = torch.tensor([encoded.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    targets = torch.tensor(encoded.assistant_mask[1:])
    expected = torch.nn.functional.cross_entropy(logits[targets], ids[0, 1:][targets]).item()
    result = score_forward(model, tokenizer, [sample], token_budget=1000, embed=False, progress=False)
    assert result.embeddings is None
    assert result.n_tokens[0] == int(targets.sum())
    assert result.loss[0] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("pool", ["prompt", "user"])
def test_fused_embedding_equals_prompt_only_pass(tiny, pool):
    model, tokenizer = tiny
    samples = _samples(6)
    result = score_forward(model, tokenizer, samples, token_budget=400, progress=False, pooling=EmbedConfig(pool=pool))
    body, _ = body_and_head(model)
    for row, sample in enumerate(samples):
        prompt = tokenizer.apply_chat_template(sample["messages"][:-1], add_generation_prompt=True, tokenize=False)
        encoding = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        users = [m["content"] for m in sample["messages"][:-1] if m["role"] == "user"]
        spans = [(prompt.find(text), prompt.find(text) + len(text)) for text in users]
        starts = [start for start, _ in encoding["offset_mapping"]]
        keep = [pool == "prompt" or any(lo <= start < hi for lo, hi in spans) for start in starts]
        with torch.no_grad():
            states = body(input_ids=torch.tensor([encoding["input_ids"]])).last_hidden_state[0]
        np.testing.assert_allclose(result.embeddings[row], states[torch.tensor(keep)].mean(dim=0).numpy(), atol=1e-4)


def test_long_samples_are_truncated_from_the_left_and_counted(tiny):
    model, tokenizer = tiny
    samples = _samples(8)
    lengths = [len(encode_chat(tokenizer, s["id"], s["messages"], 10_000)) for s in samples]
    limit = sorted(lengths)[4]
    result = score_forward(model, tokenizer, samples, token_budget=500, max_length=limit, progress=False)
    too_long = np.array(lengths) > limit
    assert result.truncated == int(too_long.sum()) > 0
    np.testing.assert_array_equal(result.truncated_mask, too_long)
    assert len(result.ids) == len(samples) and np.all(np.isfinite(result.loss))
    encoded = encode_chat(tokenizer, samples[7]["id"], samples[7]["messages"], limit)
    full = encode_chat(tokenizer, samples[7]["id"], samples[7]["messages"], 10_000)
    assert encoded.input_ids == full.input_ids[-limit:]  # cut from the left: the response is intact


@pytest.mark.parametrize("pool", ["user", "raw"])
def test_samples_tokenised_in_chunks_give_the_results_of_one_chunk(tiny, monkeypatch, pool):
    model, tokenizer = tiny
    samples = _samples(13)
    pooling = EmbedConfig(pool=pool)
    whole = score_forward(model, tokenizer, samples, token_budget=300, max_length=90, progress=False, pooling=pooling)
    monkeypatch.setattr(forward, "ENCODE_CHUNK", 4)  # 4 chunks, the last of one sample
    chunked = score_forward(model, tokenizer, samples, token_budget=300, max_length=90, progress=False,
                            pooling=pooling)
    assert chunked.ids == whole.ids == [s["id"] for s in samples]
    np.testing.assert_allclose(chunked.loss, whole.loss, atol=1e-5, rtol=0)
    np.testing.assert_allclose(chunked.embeddings, whole.embeddings, atol=1e-5, rtol=0)
    assert chunked.n_tokens.tolist() == whole.n_tokens.tolist()
    assert chunked.truncated_mask.tolist() == whole.truncated_mask.tolist() and 0 < whole.truncated < 13
    assert chunked.embed_fallbacks == whole.embed_fallbacks
