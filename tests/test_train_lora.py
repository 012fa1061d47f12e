"""LoRA through peft: only adapter weights train, the adapter is kept beside the merged model, and the merged model
scores every sample as the base plus adapter does."""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file
from test_model_train import sft_samples

from middo.model.config import LoraSettings, ModelConfig, TrainConfig
from middo.model.forward import score_forward
from middo.model.load import load_model
from middo.model.train import train_sft
from middo.model.weights import ADAPTER_DIR

LORA = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])


def test_lora_trains_adapters_only_and_the_merge_scores_like_the_adapter(tiny_model_dir, tmp_path):
    from peft import PeftModel

    config = TrainConfig(epochs=2, lr=1e-2, token_budget=512, lora=LORA, save_steps=0)
    samples = sft_samples(24)
    metrics = train_sft(tiny_model_dir, samples, config, ModelConfig(base=str(tiny_model_dir)), tmp_path / "m",
                        progress=False)  # fmt: skip
    assert 0 < metrics["trainable_parameters"] < metrics["parameters"] / 10
    adapter = load_file(tmp_path / "m" / ADAPTER_DIR / "adapter_model.safetensors")
    assert adapter and all("lora_" in name for name in adapter)  # the adapter holds adapter weights only

    base = load_file(tiny_model_dir / "model.safetensors")
    merged = load_file(tmp_path / "m" / "model.safetensors")
    changed = {name for name in base if not torch.equal(base[name], merged[name])}
    assert changed and all(name.endswith(("q_proj.weight", "v_proj.weight")) for name in changed)

    adapted, tokenizer = load_model(tiny_model_dir, device="cpu")
    adapter_dir = str(tmp_path / "m" / ADAPTER_DIR)
    adapted = PeftModel.from_pretrained(adapted, adapter_dir).eval().get_base_model()  # layers hold the adapter
    merged_model, _ = load_model(tmp_path / "m", device="cpu")
    with_adapter = score_forward(adapted, tokenizer, samples, 4096, embed=False, progress=False).loss
    after_merge = score_forward(merged_model, tokenizer, samples, 4096, embed=False, progress=False).loss
    untrained = score_forward(load_model(tiny_model_dir, device="cpu")[0], tokenizer, samples, 4096, embed=False,
                              progress=False).loss  # fmt: skip
    assert np.max(np.abs(with_adapter - after_merge)) < 1e-5
    assert np.mean(after_merge) < np.mean(untrained) - 0.1  # the adapter learned something
