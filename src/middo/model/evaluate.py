"""Held-out evaluation: mean assistant-token NLL, greedy exact-match accuracy on checkable answers, and the
benchmark tasks of `eval.tasks` through lm-evaluation-harness (`middo.model.harness`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from middo.data.schema import prompt_messages, read_samples, sample_meta
from middo.errors import InputError
from middo.log import get_logger, write_metrics
from middo.model import harness, harness_run, ranks
from middo.model.batching import pad_left
from middo.model.config import EvalConfig, ModelConfig
from middo.model.encode import ensure_chat_template
from middo.model.forward import context_length, nll_forward
from middo.model.load import load_model

log = get_logger("middo.model.evaluate")


def normalise(text: str) -> str:
    """Lower case with runs of whitespace collapsed: what exact match compares."""
    return " ".join(text.lower().split())


def meta_of(sample: dict) -> dict:
    """The sample's `meta` as a dict (see `middo.data.schema.sample_meta`)."""
    return sample_meta(sample.get("meta"), sample.get("id", "?"))


def answer_of(sample: dict) -> str | None:
    """The checkable answer in the sample's `meta` JSON (`{"answer": ...}`), if any."""
    answer = meta_of(sample).get("answer")
    return None if answer is None else str(answer)


def accuracy_by_group(samples: Sequence[dict], hits: Sequence[bool], key: str) -> dict[str, float]:
    """Exact match per value of `meta[key]` (samples without one are left out); empty when no sample has one."""
    per_group: dict[str, list[bool]] = {}
    for sample, hit in zip(samples, hits, strict=True):
        if (group := meta_of(sample).get(key)) is not None:
            per_group.setdefault(str(group), []).append(hit)
    return {group: sum(flags) / len(flags) for group, flags in sorted(per_group.items())}


def stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that end an assistant turn: the tokenizer's and model's eos, and ChatML's `<|im_end|>` if present."""
    configured = model.generation_config.eos_token_id
    ids = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if im_end is not None and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


@torch.inference_mode()
def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[dict]],
    max_new_tokens: int,
    batch_size: int,
    max_length: int,
    progress: bool = True,
) -> list[str]:
    """Greedy completions of chat prompts, batched by length with left padding; in the input order."""
    budget = max(1, max_length - max_new_tokens)
    encoded = [
        tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True,
                                      return_dict=False)[-budget:]
        for messages in prompts
    ]
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    stop_ids = stop_token_ids(model, tokenizer)
    outputs: list[str] = [""] * len(encoded)
    for start in tqdm(range(0, len(order), batch_size), desc="generate", disable=not progress):
        batch = order[start : start + batch_size]
        ids, attention = pad_left([encoded[index] for index in batch], pad_id)
        generated = model.generate(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=stop_ids,
        )
        for slot, index in enumerate(batch):
            outputs[index] = tokenizer.decode(generated[slot, ids.shape[1] :], skip_special_tokens=True).strip()
    return outputs


@dataclass(frozen=True)
class EvalPaths:
    """Files of the eval stage."""

    model: Path
    """Model dir to evaluate."""
    data: Path
    """Held-out dataset (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""


def run_eval(paths: EvalPaths, config: EvalConfig, model_config: ModelConfig) -> dict | None:
    """Evaluate the model at `paths.model` on the held-out set and `eval.tasks`; write the metrics.

    The tasks are resolved, their data read and checked against the backend before the model loads, so a wrong
    task name or a missing data file costs seconds. `paths.model` equal to `model.base` is M0 (its `gguf_file`).
    Under a data-parallel launcher each process takes a share of the held-out samples (and, with the `hf` backend,
    of the harness's requests); process 0 writes the metrics, the others return None."""
    tasks = harness.prepare_tasks(config, paths.data) if config.tasks else None
    gguf_file = model_config.gguf_file if str(paths.model) == str(Path(model_config.base)) else None
    state = ranks.start(model_config.device)
    device = ranks.rank_device(model_config.device, state)
    model, tokenizer = load_model(paths.model, gguf_file=gguf_file, device=device, dtype=model_config.dtype,
                                  trust_remote_code=model_config.trust_remote_code)
    samples = read_samples(paths.data).select("id", "messages", "meta").to_dicts()
    metrics = evaluate_model(model, tokenizer, samples, config, model_config.max_length, model_config.chat_template,
                             state=state)  # fmt: skip
    if tasks is not None:
        max_length = context_length(model, model_config.max_length)
        if config.backend != "hf":  # vllm or a server loads the model itself: hand back the memory first
            model = None
            torch.cuda.empty_cache()
        if config.backend == "hf" or state.is_main_process:  # other backends run in process 0 alone
            loaded = (model, tokenizer)
            task_metrics = evaluate_tasks(tasks, config, paths.model, loaded, model_config, max_length, state)
            if metrics is not None:
                metrics["tasks"] = task_metrics
    ranks.stop(state)
    if metrics is not None:
        write_metrics(metrics, paths.metrics)
    return metrics


def evaluate_tasks(tasks: harness.PreparedTasks, config: EvalConfig, model_dir: Path,
                   loaded: tuple[PreTrainedModel | None, PreTrainedTokenizerBase], model_config: ModelConfig,
                   max_length: int, state=ranks.SINGLE) -> dict | None:  # fmt: skip
    """Each task's metrics (with stderr) from the harness; `loaded` is the (model, tokenizer) the `hf` backend runs.
    With several processes (`state`) the harness shares the requests out; the metrics are on process 0, None on
    the others."""
    model, tokenizer = loaded
    if config.chat_template and model_config.chat_template:
        ensure_chat_template(tokenizer, model_config.chat_template)
    lm, model_args = harness_run.harness_model(config, model_dir, model, tokenizer, max_length)
    if model_args is None and state.num_processes > 1:
        harness_run.share_requests(lm, state)
    results = harness_run.run_tasks(config, tasks, lm, model_args)
    if results is None:
        return None
    metrics = harness_run.task_metrics(results)
    for task, values in metrics.items():
        log.info("%s: %s", task, ", ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, float)))
    return metrics


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[dict],
    config: EvalConfig,
    max_length: int | None = None,
    chat_template: str | None = None,
    progress: bool = True,
    state=ranks.SINGLE,
) -> dict | None:
    """Metrics of `model` on held-out `samples` (dicts with `id`, `messages`, optional `meta`).

    With several processes (`state`, `middo.model.ranks`) each scores a length-balanced share; the metrics are on
    process 0, None on the others."""
    if not samples:
        raise InputError("evaluation set is empty; pass a dataset with at least one sample")
    rows = sample_results(model, tokenizer, ranks.shard(samples, state), config, max_length, chat_template, progress)
    merged = ranks.gather_rows(rows, [sample["id"] for sample in samples], state, "eval results")
    return None if merged is None else held_out_metrics(samples, merged, config, state.num_processes)


def sample_results(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, samples: Sequence[dict],
                   config: EvalConfig, max_length: int | None, chat_template: str | None,
                   progress: bool) -> dict[str, list | np.ndarray]:  # fmt: skip
    """Per sample (input order): `id`, mean assistant-token NLL `loss`, `n_tokens`, `truncated`, and the greedy
    `prediction` of a sample with a checkable answer (None otherwise, and when `eval.exact_match` is off)."""
    result = nll_forward(model, tokenizer, samples, config.token_budget, max_length=max_length,
                         chat_template=chat_template, progress=progress)  # fmt: skip
    predictions: list[str | None] = [None] * len(samples)
    checkable = [index for index, sample in enumerate(samples) if answer_of(sample) is not None]
    if config.exact_match and checkable:
        prompts = [prompt_messages(list(samples[index]["messages"])) for index in checkable]
        generated = generate_greedy(model, tokenizer, prompts, config.max_new_tokens, config.gen_batch_size,
                                    context_length(model, max_length), progress)  # fmt: skip
        for index, prediction in zip(checkable, generated, strict=True):
            predictions[index] = prediction
    return {"id": [sample["id"] for sample in samples], "loss": result.loss, "n_tokens": result.n_tokens,
            "truncated": result.truncated_mask, "prediction": predictions}  # fmt: skip


def held_out_metrics(samples: Sequence[dict], rows: dict, config: EvalConfig, processes: int = 1) -> dict:
    """The held-out metrics from the per-sample `rows` of `sample_results` (in the order of `samples`)."""
    loss, n_tokens = rows["loss"], rows["n_tokens"]
    scored = n_tokens > 0
    total_tokens = int(n_tokens.sum())
    token_nll = float(np.sum(loss[scored] * n_tokens[scored]) / max(1, total_tokens))
    metrics = {
        "samples": len(samples),
        "processes": processes,
        "nll": token_nll,
        "perplexity": math.exp(token_nll) if token_nll < 50 else float("inf"),
        "nll_sample_mean": float(np.mean(loss[scored])) if scored.any() else float("nan"),
        "assistant_tokens": total_tokens,
        "truncated": int(rows["truncated"].sum()),
    }
    checkable = [(sample, answer, prediction) for sample, prediction in zip(samples, rows["prediction"], strict=True)
                 if (answer := answer_of(sample)) is not None]  # fmt: skip
    metrics["answer_samples"] = len(checkable)
    if not config.exact_match:
        return metrics
    if checkable:
        hits = [normalise(prediction) == normalise(answer) for _, answer, prediction in checkable]
        metrics["exact_match"] = sum(hits) / len(hits)
        by_group = accuracy_by_group([s for s, _, _ in checkable], hits, config.group_by) if config.group_by else {}
        if by_group:
            metrics[f"exact_match_by_{config.group_by}"] = by_group
    else:
        metrics["exact_match"] = float("nan")
    return metrics
