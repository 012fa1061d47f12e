"""Run under torchrun (or plainly) by test_train_ddp.py: SFT of the tiny model through `middo.model.sft.fit`; each
process writes the examples it was handed in each epoch and a digest of its final weights to `<out>/rank<k>.json`,
and process 0 saves the model to `<out>/model`.

usage: python tests/ddp_probe.py BASE SAMPLES_JSON OUT GRAD_ACCUM
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from accelerate import PartialState

from middo.model.config import TrainConfig
from middo.model.forward import encode_samples
from middo.model.load import load_model
from middo.model.sft import fit, sft_config
from middo.model.weights import save_full


def main(base: str, samples_path: str, out: str, grad_accum: int) -> None:
    state = PartialState()
    out_dir = Path(out)
    model, tokenizer = load_model(base, device="cpu", dtype="float32")
    rows = encode_samples(tokenizer, json.loads(Path(samples_path).read_text()), 64)
    config = TrainConfig(epochs=2, lr=3e-3, warmup_ratio=0.0, token_budget=256, grad_accum=grad_accum, save_steps=0)
    args = sft_config(config, out_dir / f"scratch{state.process_index}", bf16=False, use_cpu=True, progress=False)
    seen: list[str] = []

    def recording(collate, batches):
        def collate_and_record(examples):  # (epoch, example): the order is reshuffled each epoch
            seen.extend(f"{batches.epoch}:" + hashlib.sha1(str(example["input_ids"]).encode()).hexdigest()
                        for example in examples)  # fmt: skip
            return collate(examples)

        return collate_and_record

    from middo.model import sft

    original = sft.GroupedSFTTrainer.get_train_dataloader

    def get_train_dataloader(self):
        self.data_collator = recording(self.data_collator, self.batches)
        return original(self)

    sft.GroupedSFTTrainer.get_train_dataloader = get_train_dataloader
    result = fit(model, tokenizer, rows, config, args)
    weights = result.trainer.accelerator.unwrap_model(result.trainer.model).state_dict()
    digest = hashlib.sha256(b"".join(weights[name].numpy().tobytes() for name in sorted(weights))).hexdigest()
    report = {"rank": state.process_index, "processes": state.num_processes, "seen": seen, "digest": digest,
              "steps": result.figures["steps"], "backend": state.backend}  # fmt: skip
    (out_dir / f"rank{state.process_index}.json").write_text(json.dumps(report))
    save_full(result.trainer, out_dir / "model", torch.float32)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
