"""Chat encoding: only assistant tokens carry loss; left truncation; token-budget batches."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoTokenizer

from middo.errors import ConfigError
from middo.model.batching import budget_batches
from middo.model.encode import encode_chat, ensure_chat_template
from middo.model.forward import score_forward
from middo.model.load import load_model

CONVERSATION = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is two plus two?"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "And the cat?"},
    {"role": "assistant", "content": "The cat sees a dog."},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_only_assistant_turns_are_masked(tokenizer):
    encoded = encode_chat(tokenizer, "x", CONVERSATION, max_length=1024)
    masked = [token for token, keep in zip(encoded.input_ids, encoded.assistant_mask, strict=True) if keep]
    # both assistant turns (content and end-of-turn) and nothing of the system/user turns
    assert tokenizer.decode(masked) == "It is 4.<|im_end|>\nThe cat sees a dog.<|im_end|>\n"
    prompt = tokenizer.decode(encoded.input_ids[: encoded.prompt_len])
    assert prompt.endswith("And the cat?<|im_end|>\n<|im_start|>assistant\n")
    assert not encoded.truncated


def test_prompt_tokens_do_not_change_the_loss_target_count(tiny_model_dir):
    model, tokenizer = load_model(tiny_model_dir, device="cpu")
    longer = [dict(m) for m in CONVERSATION]
    longer[1]["content"] = "What is two plus two? Please think about the house and the river first."
    results = score_forward(model, tokenizer, [{"id": "a", "messages": CONVERSATION}, {"id": "b", "messages": longer}],
                            token_budget=1000, progress=False)  # fmt: skip
    assert results.n_tokens[0] == results.n_tokens[1] > 0


def test_left_truncation_keeps_the_response(tokenizer):
    full = encode_chat(tokenizer, "x", CONVERSATION, max_length=1024)
    cut = encode_chat(tokenizer, "x", CONVERSATION, max_length=len(full) - 5)
    assert cut.truncated and cut.input_ids == full.input_ids[5:]
    assert cut.prompt_len == full.prompt_len - 5
    assert cut.assistant_mask == full.assistant_mask[5:]


def test_missing_chat_template_is_a_clear_error(tiny_model_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink()
    model, tokenizer = load_model(plain, device="cpu")
    with pytest.raises(ConfigError, match="no chat template.*model.chat_template"):
        score_forward(model, tokenizer, [{"id": "a", "messages": CONVERSATION}], token_budget=100, progress=False)
    ensure_chat_template(tokenizer, "chatml")  # the configured fix
    result = score_forward(model, tokenizer, [{"id": "a", "messages": CONVERSATION}], token_budget=100, progress=False)
    assert result.n_tokens[0] > 0


@pytest.mark.parametrize("budget", [1, 10, 25, 1000])
def test_budget_batches_cover_every_sample_once_within_budget(budget):
    lengths = [5, 12, 3, 3, 8, 20, 1, 7, 7, 9]
    batches = budget_batches(lengths, budget)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * width <= budget
    widths = [max(lengths[i] for i in batch) for batch in batches]
    assert widths == sorted(widths, reverse=True)  # longest first
