"""The prompt embedding pools the user-written tokens: not the template's markup, system block or role tokens."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from transformers import AutoTokenizer

from middo.model.config import EmbedConfig
from middo.model.encode import encode_chat
from middo.model.forward import score_forward
from middo.model.load import load_model

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
TURNS = [
    {"role": "user", "content": "the cat sees a dog. why?"},
    {"role": "assistant", "content": "the dog likes a river."},
    {"role": "user", "content": "and the house?"},
    {"role": "assistant", "content": "the house finds a train."},
]


def pooled_text(tokenizer, messages, embed: EmbedConfig) -> str:
    encoded = encode_chat(tokenizer, "x", messages, 1024, embed)
    return tokenizer.decode([t for t, keep in zip(encoded.input_ids, encoded.embed_mask, strict=True) if keep])


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_each_pool_averages_exactly_its_tokens(tokenizer):
    messages = [SYSTEM, *TURNS]
    assert pooled_text(tokenizer, messages, EmbedConfig(pool="user")) == "the cat sees a dog. why?and the house?"
    assert pooled_text(tokenizer, messages, EmbedConfig(pool="last_user")) == "and the house?"
    with_system = pooled_text(tokenizer, messages, EmbedConfig(pool="last_user", system=True))
    assert with_system == "You are a helpful assistant.and the house?"
    prompt = pooled_text(tokenizer, messages, EmbedConfig(pool="prompt"))
    assert prompt.startswith("<|im_start|>system") and prompt.endswith("<|im_start|>assistant\n")


def test_the_pooled_tokens_are_the_same_whatever_the_system_block(tokenizer):
    other = {"role": "system", "content": "Answer in the style of a pirate, with many long words and asides."}
    for pool in ("user", "last_user"):
        texts = {pooled_text(tokenizer, [s, *TURNS], EmbedConfig(pool=pool)) for s in (SYSTEM, other)}
        assert len(texts) == 1, texts


def test_a_pooled_text_the_template_rewrites_falls_back_to_the_prompt_and_is_counted(tokenizer):
    shouting = copy.deepcopy(tokenizer)  # a template that upper-cases user turns: their text is not in the render
    shouting.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'user' %}{{ m['content'] | upper }}"
        "{% else %}{{ m['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    encoded = encode_chat(shouting, "x", TURNS, 1024, EmbedConfig(pool="user"))
    assert encoded.embed_fallback and encoded.embed_mask == [i < encoded.prompt_len for i in range(len(encoded))]
    assert not encode_chat(tokenizer, "x", TURNS, 1024, EmbedConfig(pool="user")).embed_fallback


def test_a_response_longer_than_half_the_context_keeps_half_a_prompt_and_loses_its_tail(tokenizer):
    long = [{"role": "user", "content": "the cat sees a dog. " * 20},
            {"role": "assistant", "content": "the river likes a house. " * 40}]
    full = encode_chat(tokenizer, "x", long, 10_000)
    cut = encode_chat(tokenizer, "x", long, 64)
    assert len(full) - full.prompt_len > 64 and cut.truncated and len(cut) == 64 and cut.prompt_len == 32
    assert cut.input_ids == full.input_ids[full.prompt_len - 32 : full.prompt_len + 32]
    assert sum(cut.embed_mask) > 0 and not cut.embed_fallback  # the user text is still there to embed


def test_raw_pool_gives_the_same_vector_under_any_system_prompt_and_the_losses_do_not_move(tiny_model_dir):
    # in one pass, user tokens attend to the system block (causal attention), so only the raw-text pool, a second
    # pass over the user text alone, is independent of it; the in-pass pools are checked token by token above
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    other = {"role": "system", "content": "the planet counts a number. the garden visits a letter."}
    samples = [{"id": "a", "messages": [SYSTEM, *TURNS]}, {"id": "b", "messages": [other, *TURNS]}]
    results = {pool: score_forward(model, tokenizer, samples, 4096, progress=False, pooling=EmbedConfig(pool=pool))
               for pool in ("raw", "user")}
    assert cosine(*results["raw"].embeddings) > 1 - 1e-5
    assert cosine(*results["user"].embeddings) < 1 - 1e-3  # the in-pass states do see the system block
    np.testing.assert_allclose(results["raw"].loss, results["user"].loss)  # the pool changes embeddings only


@pytest.fixture(scope="module")
def demo_corpus_model(tmp_path_factory):
    """A tiny model pretrained for 80 steps on a 400-line demo corpus (its tokenizer trained on that corpus)."""
    from middo.demo.generate import SuiteConfig, write_suite
    from middo.model.config import ModelConfig, PretrainConfig
    from middo.model.pretrain import build_and_pretrain

    root = tmp_path_factory.mktemp("demo_corpus_model")
    corpus = write_suite(root / "demo", SuiteConfig(n_seed=100, n_eval=12, n_corpus=400))["corpus"]
    config = PretrainConfig(corpus=str(corpus), size="tiny", seq_len=64, batch_size=8, max_steps=80, lr=5e-3)
    build_and_pretrain([corpus], root / "model", config, ModelConfig(base=str(root / "model"), device="cpu"),
                       progress=False)
    return load_model(root / "model", device="cpu")


@pytest.mark.parametrize(("short", "long", "other"), [
    ("What is 12 plus 7?", "What is 12 plus 7? Add the two numbers and give the sum of 12 and 7 as one number.",
     "Which river flows through Tarvel?"),
    ("What colour is the flag of Tarumi?",
     "What colour is the flag of Tarumi? Name the colour of the flag that Tarumi flies, in one word.",
     "What is the opposite of soft?"),
])
def test_a_long_prompt_on_a_topic_is_nearer_to_a_short_one_than_an_unrelated_short_prompt(demo_corpus_model, short,
                                                                                            long, other):
    model, tokenizer = demo_corpus_model
    samples = [{"id": key, "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]}
               for key, text in (("short", short), ("long", long), ("other", other))]
    short_vec, long_vec, other_vec = score_forward(model, tokenizer, samples, 4096, progress=False).embeddings
    assert cosine(short_vec, long_vec) > cosine(short_vec, other_vec)
