"""Base model build (tokenizer + tiny Llama), loading, pretraining stage and the `middo model` CLI."""

from __future__ import annotations

import json

import pytest
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from middo.errors import InputError
from middo.model.build import SIZES, init_base_model
from middo.model.load import load_model
from middo.model.tokenizer import train_tokenizer


def test_tiny_model_loads_like_a_hub_model(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    n_params = sum(p.numel() for p in model.parameters())
    assert 0.5e6 < n_params < 1.5e6
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.eos_token == "<|im_end|>"
    text = "The river visits a planet, naïve café 42!"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: any text round-trips
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                             add_generation_prompt=True)  # fmt: skip
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_a_word_is_one_token_after_a_space_and_at_the_start_of_a_reply():
    tokenizer = train_tokenizer(["The capital of Vendora is Palmu, 12 + 7 = 19."] * 20, vocab_size=400)
    prompt = tokenizer.tokenize("What is the capital of Vendora? k, d")
    reply = tokenizer.tokenize("Palmu")
    assert reply == ["Palmu"] and "Palmu" in tokenizer.tokenize("is Palmu")  # same token in both places
    assert "Vendora" in prompt and prompt[-4:] == ["k", ",", "Ġ", "d"]  # a space is a token of its own
    assert tokenizer.tokenize("1219") == ["1", "2", "1", "9"]  # digits stand alone
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                        return_dict=False)
    assert tokenizer.convert_ids_to_tokens(ids).count("assistant") == 1  # role names are single tokens


def test_load_model_errors_say_what_to_pass(tmp_path):
    with pytest.raises(InputError, match="local model dir"):
        load_model(tmp_path / "missing", device="cpu")
    with pytest.raises(InputError, match="GGUF file not found"):
        load_model(tmp_path / "missing.gguf", device="cpu")
    with pytest.raises(InputError, match="choose one of"):
        init_base_model(tmp_path / "m", [], size="huge")


def test_sizes_have_the_documented_parameter_counts():
    for name, target in (("tiny", 1e6), ("small", 5e6)):
        shape = SIZES[name]
        per_layer = 4 * shape.hidden_size**2 + 3 * shape.hidden_size * shape.intermediate_size
        total = shape.vocab_size * shape.hidden_size + shape.num_layers * per_layer
        assert 0.6 * target < total < 1.4 * target


def test_pretrain_stage_builds_and_lowers_loss(tiny_corpus, tmp_path):
    from stages.pretrain import main

    params = {"model": {"base": str(tmp_path / "base")},
              "pretrain": {"corpus": str(tiny_corpus), "size": "tiny", "seq_len": 64, "batch_size": 8,
                           "max_steps": 25, "lr": 5e-3}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["--texts", str(tiny_corpus), "--output", str(tmp_path / "base"), "--metrics", str(tmp_path / "base.json"),
          "--params", str(tmp_path / "params.yaml")])  # fmt: skip
    metrics = json.loads((tmp_path / "base.json").read_text())
    assert metrics["steps"] == 25 and metrics["loss_last"] < metrics["loss_first"] - 1.0
    model, tokenizer = load_model(tmp_path / "base", device="cpu")
    assert tokenizer.chat_template and model.config.num_hidden_layers == SIZES["tiny"].num_layers


def test_pack_texts_wraps_lines_as_chat_turns_ending_with_eos(tiny_model_dir):
    from middo.model.pretrain import pack_texts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    lines = ["The box holds a cat.", "Red is a color."]
    (packed,) = pack_texts(tokenizer, lines, seq_len=1000)
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token_id == end_id and packed.input_ids.count(end_id) == 2
    assert tokenizer.bos_token_id not in packed.input_ids
    assert "<|im_start|>assistant" in tokenizer.decode(packed.input_ids) and packed.assistant_mask[-1]


def test_cli_model_init(tiny_corpus, tmp_path):
    from typer.testing import CliRunner

    from middo.cli.main import app

    result = CliRunner().invoke(app, ["model", "init", "--output", str(tmp_path / "m"), "--texts", str(tiny_corpus),
                                      "--size", "tiny"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "tokenizer.json").exists()
    bad = CliRunner().invoke(app, ["model", "init", "--output", str(tmp_path / "x"), "--texts", str(tiny_corpus),
                                   "--size", "huge"])  # fmt: skip
    assert bad.exit_code != 0 and "choose tiny or small" in bad.output
