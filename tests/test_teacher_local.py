"""The `local` backend on a tiny random Llama (no downloads): batched greedy = one-by-one, logprobs, cache."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from middo.errors import ConfigError
from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.local import LocalTeacher

PROMPTS = ["the cat sees a dog", "What is two plus two?", "the river counts a planet, the house moves", "hi"]


@pytest.fixture(scope="module")
def chat_model(tiny_model_dir):
    """A random Llama with large weights, so greedy replies differ between prompts (the saved tiny model's
    untrained replies are all alike)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, initializer_range=0.5,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer


def _teacher(chat_model, tmp_path, **overrides) -> LocalTeacher:
    cfg = TeacherConfig(backend="local", model="tiny-chat", cache_path=str(tmp_path / "local.sqlite"),
                        local_batch_size=3, **overrides)
    teacher = make_teacher(cfg, local_model=chat_model)
    assert isinstance(teacher, LocalTeacher)
    return teacher


def _requests(logprobs: int | None = None) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": text}], 0.0, 10, "simplify", logprobs) for text in PROMPTS]


def _reference(chat_model, text: str) -> tuple[str, int]:
    model, tokenizer = chat_model
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                           tokenize=False)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        output = model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    new = output[0, ids.shape[1]:].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id) + 1]
    return tokenizer.decode(new, skip_special_tokens=True), ids.shape[1]


def test_batched_greedy_replies_match_one_by_one_generation(chat_model, tmp_path):
    teacher = _teacher(chat_model, tmp_path)
    replies = teacher.complete(_requests())
    references = [_reference(chat_model, text) for text in PROMPTS]
    assert [reply.text for reply in replies] == [text for text, _ in references]
    assert [reply.prompt_tokens for reply in replies] == [length for _, length in references]
    assert len({reply.text for reply in replies}) > 1  # the check above is not comparing constant strings
    usage = teacher.usage()
    assert usage["requests"] == 4 and usage["tokens"]["simplify"]["prompt_tokens"] == sum(n for _, n in references)


def test_batches_stay_under_the_token_budget_and_the_row_cap(chat_model, tmp_path):
    _, tokenizer = chat_model
    requests = [ChatRequest([{"role": "user", "content": f"{text} {i}"}], 0.0, 10, "simplify")
                for i in range(3) for text in PROMPTS]
    widths = [len(tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, return_dict=False)) + 10
              for r in requests]
    sizes, teacher = _spy(_teacher(chat_model, tmp_path / "a", local_token_budget=3 * max(widths)))
    replies = teacher.complete(requests)
    assert len(replies) == 12 and all(reply.ok for reply in replies) and sum(sizes) == 12
    assert max(sizes) == 3  # the row cap (3) binds: the budget alone would allow more rows of the shorter prompts
    sizes, teacher = _spy(_teacher(chat_model, tmp_path / "b", local_token_budget=2 * max(widths) - 1))
    teacher.complete(requests)
    assert sizes[0] == 1 and sum(sizes) == 12  # the longest prompts go first, one per batch under this budget
    sizes, teacher = _spy(_teacher(chat_model, tmp_path / "c", local_token_budget=1))
    teacher.complete(requests)
    assert sizes == [1] * 12  # every request is over the budget: a batch of its own


def _spy(teacher: LocalTeacher) -> tuple[list[int], LocalTeacher]:
    """Record the size of every generation batch."""
    sizes, generate = [], teacher._generate
    teacher._generate = lambda group, prompts: (sizes.append(len(group)), generate(group, prompts))[1]
    return sizes, teacher


def test_top_logprobs_are_the_model_distribution_per_position(chat_model, tmp_path):
    model, tokenizer = chat_model
    reply = _teacher(chat_model, tmp_path).complete(_requests(logprobs=5)[:1])[0]
    assert reply.top_logprobs is not None and len(reply.top_logprobs) == reply.completion_tokens
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True,
                                           tokenize=False)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        expected = torch.log_softmax(model(ids).logits[0, -1], dim=-1).topk(5)
    first = reply.top_logprobs[0]
    assert sorted(first.values(), reverse=True) == pytest.approx(expected.values.tolist(), abs=1e-4)
    best = max(first, key=first.get)
    assert best == tokenizer.decode([expected.indices[0].item()])


def test_cache_answers_repeats_and_a_changed_model_misses(chat_model, tmp_path):
    model, tokenizer = chat_model
    calls = {"n": 0}
    original = model.generate

    def counting_generate(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    model.generate = counting_generate
    try:
        first = _teacher(chat_model, tmp_path).complete(_requests())
        assert calls["n"] == 2  # 4 prompts in batches of 3
        again = _teacher(chat_model, tmp_path).complete(_requests())
        assert calls["n"] == 2 and all(reply.cached for reply in again)
        assert [reply.text for reply in again] == [reply.text for reply in first]
        with torch.no_grad():
            model.lm_head.weight.mul_(1.5)  # "retrained": same name, new weights
        _teacher(chat_model, tmp_path).complete(_requests())
        assert calls["n"] == 4
    finally:
        with torch.no_grad():
            model.lm_head.weight.div_(1.5)
        del model.generate


def test_tokenizer_without_chat_template_is_rejected(chat_model, tmp_path):
    model, tokenizer = chat_model
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        _teacher((model, plain), tmp_path)
