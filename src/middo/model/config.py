"""Params sections of the model layer: `model`, `train`, `eval`, `pretrain`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from middo.config import check


@dataclass(frozen=True)
class ModelConfig:
    """Section `model`: which base model M0 is and how to run it."""

    base: str
    """Base model M0: a local model dir, a hub id, or a `.gguf` file (required)."""
    gguf_file: str | None = None
    """GGUF file name inside `base` (a dir or hub id); null for safetensors/pytorch weights."""
    max_length: int = 1024
    """Context length in tokens; longer samples lose prompt tokens from the left (counted in metrics)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Weights and compute type; `auto` is bfloat16 on GPU and float32 on CPU (bf16 on CPU is very slow)."""
    chat_template: str | None = None
    """Chat template when the tokenizer has none: `chatml` or a Jinja string; null uses the tokenizer's own."""
    device: str | None = None
    """Torch device (`cpu`, `cuda`, `cuda:1`); null picks CUDA when available."""
    trust_remote_code: bool = False
    """Run the Python code a model repo ships (transformers' `trust_remote_code`) when loading M0 and the round models;
    off, such a model is refused with a message, never a terminal prompt. Turn on only for code you trust."""

    def __post_init__(self) -> None:
        check(bool(self.base), "model.base is empty; set it to a model dir, a hub id or a .gguf file")
        check(self.max_length >= 16, f"model.max_length = {self.max_length}; use at least 16 tokens")


@dataclass(frozen=True)
class EmbedConfig:
    """Section `embed`: which tokens the prompt embedding averages (last-layer states of the same forward pass as the
    losses). Used wherever embeddings are taken: the score stage and the refine gate's near-duplicate and density
    checks."""

    pool: Literal["user", "last_user", "prompt", "raw"] = "user"
    """`user`: the content of every user turn (no template markup, no system block the template inserts, no role
    tokens); `last_user`: the last user turn's content only; `prompt`: every token before the response; `raw`: the
    user text alone, without template, in a second pass (the reference's embedding; costs a prompt-only pass)."""
    system: bool = False
    """Also average the content of a system message the sample itself carries (all pools but `prompt`)."""


SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr", "inverse_sqrt")
LAUNCHERS = ("torchrun", "accelerate", "command")


@dataclass(frozen=True)
class LoraSettings:
    """Sub-section `train.lora`: train low-rank adapters instead of every weight (peft), merged after training."""

    r: int = 16
    """Adapter rank."""
    alpha: int = 32
    """Adapter scaling numerator (`lora_alpha`; the update is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    target_modules: list[str] | str = "all-linear"
    """Module names (or name suffixes) that get adapters, e.g. [q_proj, v_proj]; `all-linear`: every linear layer
    but the output head."""
    qlora: bool = False
    """Load the frozen base in 4-bit NF4 (QLoRA; needs a CUDA GPU and the bitsandbytes package)."""

    def __post_init__(self) -> None:
        check(self.r >= 1, f"train.lora.r = {self.r}; use a rank of 1 or more, such as 16")
        check(self.alpha >= 1, f"train.lora.alpha = {self.alpha}; use 1 or more, such as 2 * r")
        check(0 <= self.dropout < 1, f"train.lora.dropout = {self.dropout}; use a value in [0, 1)")
        check(bool(self.target_modules), "train.lora.target_modules is empty; name modules or use all-linear")


@dataclass(frozen=True)
class TrainConfig:
    """Section `train`: SFT of the base model on a round's dataset with TRL's SFTTrainer (loss on every assistant
    turn). The defaults are the paper's recipe (full fine-tune, lr 2e-5, 1 epoch, cosine, warmup 0.03); set
    `model.max_length` for its 4096-token context."""

    epochs: float = 1.0
    """Passes over the dataset (a fraction stops part way through the last pass)."""
    lr: float = 2e-5
    """Peak AdamW learning rate, reached after warmup."""
    scheduler: Literal[SCHEDULERS] = "cosine"
    """Learning-rate schedule after warmup (transformers' names): `cosine` decays to 0, `linear`, `constant`,
    `constant_with_warmup`, `cosine_with_min_lr` (decays to `min_lr_ratio * lr`), `inverse_sqrt`."""
    min_lr_ratio: float = 0.0
    """Scheduler `cosine_with_min_lr`: final learning rate as a fraction of `lr`."""
    warmup_ratio: float = 0.03
    """Fraction of optimiser steps with linear warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    batch_size: int | None = None
    """Samples per micro-batch on each device; null: as many as `token_budget` allows (length-grouped either way)."""
    token_budget: int = 4096
    """With `batch_size: null`: padded tokens per micro-batch on each device (batch size x longest sample)."""
    grad_accum: int = 1
    """Micro-batches per optimiser step on each device (global batch: processes x grad_accum micro-batches)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    max_steps: int | None = None
    """Stop after this many optimiser steps (null: run all epochs)."""
    bf16: bool | None = None
    """bf16 mixed precision; null: on when the GPU supports it, off on CPU (true on a CPU is an error)."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass: much less memory for about a third more compute (on by default,
    as in TRL; off for speed when memory allows)."""
    lora: LoraSettings | None = None
    """Low-rank adapters (peft) instead of a full fine-tune; null: full fine-tune (the paper's)."""
    save_steps: int = 200
    """Checkpoint every this many optimiser steps into `checkpoints/r<r>` (kept until the round's model is saved),
    so a killed train resumes where it stopped; 0: no checkpoints."""
    seed: int = 0
    """Seed of initialisation, dropout and batch order: the same seed gives the same weights on CPU."""
    processes: int = 1
    """Training processes (one per GPU); more than 1 launches the stage under `launcher` (data parallel)."""
    launcher: Literal[LAUNCHERS] = "torchrun"
    """How `processes` > 1 is launched: `torchrun` (one node), `accelerate` (with `accelerate_config`: DDP, FSDP or
    DeepSpeed), `command` (`launch_prefix` as written, e.g. an `srun ...` line that starts one process per GPU)."""
    accelerate_config: str | None = None
    """Launcher `accelerate`: the `accelerate config` YAML file (a dep of the train stage)."""
    launch_prefix: str | None = None
    """Launcher `command`: the command line put before `-m stages.train ...`, e.g. `srun --ntasks-per-node 8 python`
    or `torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint $HEAD:29500`."""
    extra: dict = field(default_factory=dict)
    """Further `trl.SFTConfig` fields, passed as they are (e.g. {optim: adamw_torch_fused, deepspeed: ds.json})."""

    def __post_init__(self) -> None:
        check(self.epochs > 0, f"train.epochs = {self.epochs}; use a positive number of passes")
        check(self.lr > 0, f"train.lr = {self.lr}; use a positive learning rate such as 2e-5")
        check(0 <= self.min_lr_ratio <= 1, f"train.min_lr_ratio = {self.min_lr_ratio}; use a value in [0, 1]")
        check(self.min_lr_ratio == 0 or self.scheduler == "cosine_with_min_lr",
              "train.min_lr_ratio is read by scheduler cosine_with_min_lr only; set train.scheduler")  # fmt: skip
        check(0 <= self.warmup_ratio < 1, f"train.warmup_ratio = {self.warmup_ratio}; use a value in [0, 1)")
        check(self.weight_decay >= 0, f"train.weight_decay = {self.weight_decay}; use 0 or more")
        check(self.batch_size is None or self.batch_size >= 1, "train.batch_size must be null or at least 1")
        check(self.token_budget >= 16, f"train.token_budget = {self.token_budget}; use at least 16 tokens")
        check(self.grad_accum >= 1, f"train.grad_accum = {self.grad_accum}; use 1 or more")
        check(self.max_grad_norm > 0, f"train.max_grad_norm = {self.max_grad_norm}; use a positive norm")
        check(self.max_steps is None or self.max_steps >= 1, "train.max_steps must be null or at least 1")
        check(self.save_steps >= 0, f"train.save_steps = {self.save_steps}; use 0 (no checkpoints) or more")
        check(self.processes >= 1, f"train.processes = {self.processes}; use 1 or more")
        check(self.launcher != "accelerate" or bool(self.accelerate_config),
              "train.launcher is accelerate but train.accelerate_config is not set; name your accelerate config "
              "file (`accelerate config --config_file FILE` writes one)")  # fmt: skip
        check(self.launcher != "command" or bool(self.launch_prefix),
              "train.launcher is command but train.launch_prefix is not set; write the command that starts the "
              "processes, e.g. `srun --ntasks-per-node 8 python`")  # fmt: skip


HARNESS_BACKENDS = ("hf", "vllm", "local-completions", "local-chat-completions")


@dataclass(frozen=True)
class EvalConfig:
    """Section `eval`: held-out NLL and greedy exact match, plus benchmark tasks through lm-evaluation-harness."""

    token_budget: int = 8192
    """Padded tokens per batch of the NLL pass."""
    gen_batch_size: int = 16
    """Prompts per batch of greedy generation (left padded)."""
    max_new_tokens: int = 64
    """Generation length for samples with a checkable answer (`meta.answer`)."""
    group_by: str | None = None
    """A `meta` key whose values break exact match down by group (`exact_match_by_<key>`); null: no breakdown."""
    exact_match: bool = True
    """Greedy exact match on held-out samples with `meta.answer` (middo's own); off when an lm-eval task in `tasks`
    scores the same set, as the demo's `middo_demo` does, so the answers are not generated twice."""
    tasks: list[str] = field(default_factory=list)
    """lm-eval tasks: registered names or groups (`mmlu`, `gsm8k`, `ifeval`) and paths to task dirs or YAML files of
    your own; empty: the held-out metrics only. Local paths become deps of the eval stages (`middo unroll`)."""
    backend: Literal[HARNESS_BACKENDS] = "hf"
    """How the harness runs the model: `hf` (in process, the model middo loads), `vllm` (lm-eval's vLLM backend on
    the model dir; needs vllm), `local-completions` / `local-chat-completions` (an OpenAI-compatible server at
    `base_url` serving the stage's model; chat completions cannot score loglikelihood tasks)."""
    base_url: str | None = None
    """Endpoint of the `local-*` backends, e.g. http://localhost:8000/v1/completions."""
    num_fewshot: int | None = None
    """Few-shot examples per prompt for every task; null: each task's own default (0 when it has none)."""
    limit: int | None = None
    """At most this many examples per task (a quick check: scores are then not comparable with published ones)."""
    batch_size: int = 8
    """Requests per batch in the harness (`hf`, `vllm`) or concurrent requests (`local-*`)."""
    gen_kwargs: dict = field(default_factory=dict)
    """Generation settings overriding every generate task's own, e.g. {max_gen_toks: 512}; {}: the tasks' own."""
    chat_template: bool = True
    """Render harness prompts with the model's chat template (few-shot examples as turns), as for a chat model."""
    model_args: dict = field(default_factory=dict)
    """Further arguments of the harness backend, passed as they are (e.g. {gpu_memory_utilization: 0.8} for vllm)."""
    unsafe_code: bool = False
    """Allow tasks that execute the model's generated code (HumanEval, MBPP); turn on only inside a sandbox."""

    def __post_init__(self) -> None:
        check(self.token_budget >= 16, f"eval.token_budget = {self.token_budget}; use at least 16 tokens")
        check(self.gen_batch_size >= 1, f"eval.gen_batch_size = {self.gen_batch_size}; use 1 or more")
        check(self.max_new_tokens >= 1, f"eval.max_new_tokens = {self.max_new_tokens}; use 1 or more")
        check(all(isinstance(t, str) and t.strip() for t in self.tasks), "eval.tasks holds an empty name; remove it")
        check(len(set(self.tasks)) == len(self.tasks), f"eval.tasks = {self.tasks} names a task twice")
        check(self.limit is None or self.limit >= 1,
              f"eval.limit = {self.limit}; use null (every example) or 1 or more examples per task")  # fmt: skip
        check(self.num_fewshot is None or self.num_fewshot >= 0,
              f"eval.num_fewshot = {self.num_fewshot}; use null or 0 or more")  # fmt: skip
        check(self.batch_size >= 1, f"eval.batch_size = {self.batch_size}; use 1 or more")
        check(not self.backend.startswith("local-") or bool(self.base_url),
              f"eval.backend is {self.backend} but eval.base_url is not set; give the server's URL, e.g. "
              "http://localhost:8000/v1/completions")  # fmt: skip


@dataclass(frozen=True)
class PretrainConfig:
    """Section `pretrain` (optional; the offline demo has it): build the base model `model.base` from a config, with
    a tokenizer trained on a plain-text corpus, and pretrain it briefly on that corpus, in a stage before round 1."""

    corpus: str
    """Plain-text corpus, one text per line (required when the section is present)."""
    size: Literal["tiny", "small"] = "tiny"
    """Model size: `tiny` (~0.8M parameters: the CPU demo and tests) or `small` (~4.6M)."""
    epochs: int = 1
    """Passes over the text corpus."""
    seq_len: int = 256
    """Tokens per packed training sequence."""
    batch_size: int = 16
    """Sequences per optimiser step."""
    lr: float = 3e-3
    """Peak AdamW learning rate."""
    warmup_ratio: float = 0.05
    """Fraction of steps with linear warmup before cosine decay."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    max_steps: int | None = None
    """Stop after this many steps (null: run all epochs)."""
    seed: int = 0
    """Seed of initialisation and batch order."""

    def __post_init__(self) -> None:
        check(bool(self.corpus), "pretrain.corpus is empty; set it to a text file with one text per line")
        check(self.epochs >= 1, f"pretrain.epochs = {self.epochs}; use 1 or more")
        check(self.seq_len >= 16, f"pretrain.seq_len = {self.seq_len}; use at least 16 tokens")
        check(self.batch_size >= 1, f"pretrain.batch_size = {self.batch_size}; use 1 or more")
        check(self.lr > 0, f"pretrain.lr = {self.lr}; use a positive learning rate such as 3e-3")
        check(0 <= self.warmup_ratio < 1, f"pretrain.warmup_ratio = {self.warmup_ratio}; use a value in [0, 1)")
        check(self.weight_decay >= 0, f"pretrain.weight_decay = {self.weight_decay}; use 0 or more")
        check(self.max_grad_norm > 0, f"pretrain.max_grad_norm = {self.max_grad_norm}; use a positive norm")
        check(self.max_steps is None or self.max_steps >= 1, "pretrain.max_steps must be null or at least 1")
