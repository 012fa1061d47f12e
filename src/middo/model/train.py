"""SFT of the base model on a round's dataset through TRL (loss on every assistant turn), saved as safetensors.

Runs as one process or as each of the processes a launcher started (torchrun, accelerate, srun): accelerate's state
says which one this is; the main process writes the files.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.data.schema import read_samples
from middo.errors import ConfigError, InputError
from middo.log import get_logger, write_metrics
from middo.model.config import LoraSettings, ModelConfig, TrainConfig
from middo.model.forward import context_length, encode_samples
from middo.model.load import load_model
from middo.model.memory import return_freed_memory
from middo.model.run_state import (
    fingerprint,
    finish_checkpoints,
    link_tree,
    resume_point,
    reusable,
    start_checkpoints,
    write_record,
)
from middo.model.sft import fit, sft_config, use_bf16
from middo.model.weights import save_full, save_merged
from middo.outputs import staging_path

log = get_logger(__name__)


@dataclass(frozen=True)
class TrainPaths:
    """Files of the train stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    base: str
    """Base model M0: model dir, hub id or .gguf file."""
    output: Path
    """Model dir M(r) to write."""
    metrics: Path
    """Metrics JSON to write."""
    checkpoints: Path | None = None
    """Checkpoint dir (a DVC persist output): a re-run after a kill resumes from its newest checkpoint."""
    live: Path | None = None
    """DVCLive dir: per-step loss, learning rate and gradient norm (`dvc plots show`)."""
    reuse: Path | None = None
    """The previous round's model dir: reused (hard-linked) when it was trained on exactly the same data."""


def run_train(paths: TrainPaths, config: TrainConfig, model_config: ModelConfig) -> dict:
    """SFT of M0 on the dataset at `paths.data` (or reuse of `paths.reuse`); write the model and the metrics.

    The model is written under a staging name and moved into place once complete, so a failed or killed run leaves
    no half-written model dir (checkpoints and curves persist on purpose: a rerun resumes from them).
    """
    samples = read_samples(paths.data).select("id", "messages").to_dicts()
    key = fingerprint(paths.base, (sample["messages"] for sample in samples), config, model_config)
    state = PartialState()
    staged = staging_path(paths.output)
    if state.is_main_process:
        shutil.rmtree(staged, ignore_errors=True)  # left by a killed run
    record = reusable(paths.reuse, key)
    if record:
        metrics = {"reused_from": str(paths.reuse), "fingerprint": key, "samples": len(samples), "steps": 0}
        if state.is_main_process:
            link_tree(paths.reuse, staged)
            publish(staged, paths.output)
            write_reused_outputs(paths, key)
            write_metrics(metrics, paths.metrics)
            log.info("%s was trained on the same data and settings: reused it as %s", paths.reuse, paths.output)
        return metrics
    metrics = train_sft(paths.base, samples, config, model_config, staged, paths.checkpoints, paths.live, key)
    if state.is_main_process:
        publish(staged, paths.output)
        write_metrics(metrics, paths.metrics)
    return metrics


def publish(staged: Path, output: Path) -> None:
    """Move the finished model dir `staged` to `output`, replacing an earlier one."""
    shutil.rmtree(output, ignore_errors=True)
    os.replace(staged, output)


def write_reused_outputs(paths: TrainPaths, key: str) -> None:
    """The stage's other outputs for a round that reused a model: an empty checkpoint dir with its marker, and a
    DVCLive dir without curves (cleared of an earlier run's) whose summary says the round was not trained."""
    if paths.checkpoints:
        start_checkpoints(paths.checkpoints, key, resuming=False)
        finish_checkpoints(paths.checkpoints, key)
    if paths.live:
        shutil.rmtree(paths.live, ignore_errors=True)
        (paths.live / "plots" / "metrics").mkdir(parents=True)
        summary = {"reused_from": str(paths.reuse), "step": 0}
        (paths.live / "metrics.json").write_text(json.dumps(summary, indent=4) + "\n", encoding="utf-8")


def train_sft(
    base: str | Path,
    samples: Sequence[dict],
    config: TrainConfig,
    model_config: ModelConfig,
    output_dir: str | Path,
    checkpoints: Path | None = None,
    live: Path | None = None,
    key: str | None = None,
    progress: bool = True,
) -> dict:
    """Fine-tune a fresh copy of `base` on `samples` (dicts with `id`, `messages`); save model + tokenizer.

    Full fine-tunes keep fp32 master weights (bf16 mixed precision on GPU); LoRA loads the frozen base in the compute
    dtype. The saved model is in the training dtype. Returns the metrics dict (also the caller's to write).
    """
    state = PartialState()
    device = training_device(model_config, config, state)
    bf16 = use_bf16(config, device)
    if device.type == "cpu" and config.gradient_checkpointing:  # memory before speed: see middo.model.memory
        return_freed_memory()
    save_dtype = torch.bfloat16 if bf16 or model_config.dtype == "bfloat16" else torch.float32
    load_dtype = save_dtype if config.lora or model_config.dtype == "bfloat16" else torch.float32
    model, tokenizer = load_for_training(str(base), model_config, config, load_dtype, device)
    encoded = encode_samples(tokenizer, samples, context_length(model, model_config.max_length),
                             model_config.chat_template)  # fmt: skip
    trainable = [row for row in encoded if any(row.assistant_mask[1:])]
    if not trainable:
        raise InputError(f"none of the {len(encoded)} samples has an assistant token to train on")
    peft_config = lora_config(config.lora, model, str(base)) if config.lora else None
    with tempfile.TemporaryDirectory(prefix="middo-train-") as scratch:
        run_dir = Path(checkpoints) if checkpoints else Path(scratch)
        run_config = config if checkpoints else dataclasses.replace(config, save_steps=0)
        resume = resume_point(run_dir, key) if checkpoints and key else None
        if state.is_main_process and checkpoints:
            start_checkpoints(run_dir, key or "", resuming=resume is not None)
        state.wait_for_everyone()
        args = sft_config(run_config, run_dir, bf16, use_cpu=device.type == "cpu", progress=progress)
        callbacks = [live_callback(live, resume is not None)] if live and state.is_main_process else []
        log.info("SFT of %s on %d samples (%s, %d process(es), bf16 %s, %s)", base, len(trainable), device,
                 state.num_processes, bf16, "LoRA" if peft_config else "full fine-tune")  # fmt: skip
        result = fit(model, tokenizer, trainable, run_config, args, resume, peft_config, callbacks)
        output_dir = Path(output_dir)
        if peft_config:
            loader = lambda dtype: load_model(str(base), model_config.gguf_file, "cpu", dtype=dtype_name(dtype),  # noqa: E731
                                              trust_remote_code=model_config.trust_remote_code)
            save_merged(result.trainer, output_dir, loader, save_dtype)
        else:
            save_full(result.trainer, output_dir, save_dtype)
        if state.is_main_process:
            write_record(output_dir, key or "")
            if checkpoints:
                finish_checkpoints(run_dir, key or "")
    trained = result.trainer.model
    return {
        **result.figures,
        "samples": len(encoded),
        "samples_without_assistant_tokens": len(encoded) - len(trainable),
        "truncated": sum(row.truncated for row in encoded),
        "assistant_tokens": sum(sum(row.assistant_mask[1:]) for row in trainable),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in trained.parameters() if p.requires_grad),
        "resumed_from_step": int(resume.name.rsplit("-", 1)[-1]) if resume else 0,
        "device": str(device),
        "bf16": bf16,
        "saved_dtype": dtype_name(save_dtype),
    }


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` -> `bfloat16`."""
    return str(dtype).removeprefix("torch.")


def load_for_training(base: str, model_config: ModelConfig, config: TrainConfig, dtype: torch.dtype,
                      device: torch.device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model to train, on the CPU (the trainer places it), or for QLoRA in 4-bit NF4 on this process's GPU."""
    if not (config.lora and config.lora.qlora):
        return load_model(base, model_config.gguf_file, "cpu", dtype=dtype_name(dtype),
                          trust_remote_code=model_config.trust_remote_code)
    if device.type != "cuda" or importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("train.lora.qlora needs a CUDA GPU and the bitsandbytes package (pip install bitsandbytes); "
                          "set it to false to train LoRA on an unquantized base")  # fmt: skip
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    return load_model(base, model_config.gguf_file, str(device), dtype=dtype_name(dtype), quantization=quantization,
                      trust_remote_code=model_config.trust_remote_code)


def training_device(model_config: ModelConfig, config: TrainConfig, state: PartialState) -> torch.device:
    """This process's device; more processes on this machine than it has GPUs is an error."""
    if state.num_processes != config.processes and config.launcher != "command":
        log.warning("train.processes is %d but %d process(es) were started: run `middo unroll` after changing the "
                    "launcher, or start the stage with the command in dvc.yaml", config.processes,
                    state.num_processes)  # fmt: skip
    if model_config.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    on_this_machine = int(os.environ.get("LOCAL_WORLD_SIZE", config.processes))
    if on_this_machine > torch.cuda.device_count():
        raise ConfigError(f"{on_this_machine} training processes on this machine (train.processes) but it has "
                          f"{torch.cuda.device_count()} GPU(s); use at most one process per GPU")  # fmt: skip
    return state.device


def lora_config(settings: LoraSettings, model: PreTrainedModel, base: str):
    """peft's LoraConfig for `settings`; target modules the model lacks are an error naming the ones it has."""
    from peft import LoraConfig

    targets = settings.target_modules
    if targets != "all-linear":
        targets = [targets] if isinstance(targets, str) else list(targets)
        linear = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
        missing = [t for t in targets if not any(name == t or name.endswith("." + t) for name in linear)]
        if missing:
            have = sorted({name.rsplit(".", 1)[-1] for name in linear})
            raise ConfigError(f"train.lora.target_modules: {missing} are not linear modules of {base}; it has "
                              f"{have} (or use all-linear)")  # fmt: skip
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=targets,
                      task_type="CAUSAL_LM")  # fmt: skip


def live_callback(directory: Path, resume: bool):
    """A DVCLive callback writing curves and a summary to `directory` (continuing its steps when the run resumes)."""
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class CurvesOnly(DVCLiveCallback):
        """DVCLive without its copy of every trainer argument (params.yaml already holds the settings)."""

        def setup(self, args, state, model):
            self._initialized = True

    return CurvesOnly(live=Live(dir=str(directory), resume=resume, save_dvc_exp=False, dvcyaml=None))

