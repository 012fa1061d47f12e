"""Run prepared lm-eval tasks (`middo.model.harness.prepare_tasks`) on a model and keep each task's metrics with
their stderr: the `hf` backend wraps the model middo loaded, `vllm` and `local-*` are the harness's own backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from middo.errors import ConfigError
from middo.log import get_logger
from middo.model.config import EvalConfig
from middo.model.harness import PreparedTasks, hub_offline

log = get_logger("middo.model.harness_run")


def harness_model(config: EvalConfig, model_dir: Path, model=None, tokenizer=None, max_length: int | None = None):
    """(model, model_args) for `simple_evaluate`: an in-process HFLM around the loaded model, or a backend name."""
    if config.backend == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=config.batch_size, max_length=max_length,
                    **config.model_args), None  # fmt: skip
    if config.backend == "vllm":
        args = {"pretrained": str(model_dir), "max_model_len": max_length}
    else:
        args = {"model": str(model_dir), "base_url": config.base_url, "tokenizer": str(model_dir),
                "tokenizer_backend": "huggingface", "num_concurrent": config.batch_size, "max_length": max_length}
    return config.backend, {**args, **config.model_args}


def share_requests(lm, state) -> None:
    """Have the harness share an `hf` model's requests out over the processes of `state` (a started PartialState).

    HFLM takes a model passed in as one process (rank 0 of 1); the evaluator deals each task's documents out by
    `lm.rank`/`lm.world_size`, pads the processes to the same number of requests, and gathers the results to rank 0
    through `lm.accelerator` (`gather`, `wait_for_everyone`) and torch.distributed, all of which accelerate's
    Accelerator provides over the process group already started (gloo or nccl)."""
    from accelerate import Accelerator

    lm.accelerator = Accelerator(cpu=state.device.type == "cpu")
    lm._rank, lm._world_size = state.process_index, state.num_processes


def run_tasks(config: EvalConfig, tasks: PreparedTasks, lm, model_args: dict | None) -> dict | None:
    """Run the prepared tasks (hub off when they are all local); the harness's full results (`results`,
    `n-samples`, and `samples`: each document with the model's reply). None on a process other than rank 0 of an
    `hf` model shared out over several (`share_requests`)."""
    from lm_eval import simple_evaluate

    if config.unsafe_code:  # the code_eval metric of HumanEval/MBPP refuses to run without it
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"
    log.info("lm-eval %s on backend %s%s", ", ".join(getattr(t, "name", None) or t.task_name for t in tasks.built),
             config.backend, " (hub off: every task is local)" if tasks.offline else "")  # fmt: skip
    with hub_offline(tasks.offline):
        results = simple_evaluate(
            model=lm, model_args=model_args, tasks=tasks.built, task_manager=tasks.manager,
            num_fewshot=config.num_fewshot, limit=config.limit, batch_size=config.batch_size,
            gen_kwargs=config.gen_kwargs or None, apply_chat_template=config.chat_template,
            fewshot_as_multiturn=config.chat_template, confirm_run_unsafe_code=config.unsafe_code, log_samples=True,
        )  # fmt: skip
    if results is None and getattr(lm, "world_size", 1) > 1 and lm.rank > 0:
        return None
    if results is None:
        raise ConfigError("lm-eval returned no results on this process; run the eval stage as one process")
    return results


def task_metrics(results: dict) -> dict[str, dict[str, Any]]:
    """Each task's (and group's) metrics as `{task: {metric: value, metric_stderr: value, samples: n}}`.

    The harness keys metrics as `metric,filter`; the filter is kept as a suffix unless it is `none`
    (`exact_match_strict-match`). A stderr the harness could not compute (`N/A`) is left out.
    """
    out: dict[str, dict[str, Any]] = {}
    for task, row in {**results.get("results", {}), **results.get("groups", {})}.items():
        metrics: dict[str, Any] = {}
        for key, value in row.items():
            if "," not in key or not isinstance(value, int | float):
                continue
            metric, _, filt = key.partition(",")
            stderr = metric.endswith("_stderr")
            base = metric.removesuffix("_stderr") + ("" if filt == "none" else f"_{filt}")
            metrics[base + ("_stderr" if stderr else "")] = value
        if task in results.get("n-samples", {}):
            metrics["samples"] = results["n-samples"][task].get("effective")
        out[task] = metrics
    return out
