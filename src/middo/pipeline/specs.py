"""What each stage script reads: its params sections (config classes) and the library packages it imports.

This table is the single place `build_pipeline` learns a stage's `params:` and code `deps:`; the tests check it
against the stage scripts (`section(Cls, params, "name")` calls and transitive `middo` imports).
"""

from __future__ import annotations

from dataclasses import dataclass

from middo.config import param_keys
from middo.data.config import DataConfig
from middo.model.config import EmbedConfig, EvalConfig, ModelConfig, PretrainConfig, TrainConfig
from middo.refine.config import RefineConfig
from middo.selection.config import SelectConfig
from middo.signals.config import ClusterConfig, JudgeConfig, ScoreConfig
from middo.teacher.config import TeacherConfig


@dataclass(frozen=True)
class StageSpec:
    """The static facts of one stage kind."""

    sections: tuple[tuple[type, str], ...]
    """(config class, params section) pairs the stage script loads."""
    packages: tuple[str, ...]
    """Sub-packages of `middo` the stage imports (directly or through the library), as code deps."""


STAGE_SPECS: dict[str, StageSpec] = {
    "prepare": StageSpec(((DataConfig, "data"),), ("data",)),
    "pretrain": StageSpec(((PretrainConfig, "pretrain"), (ModelConfig, "model")), ("model",)),
    "train": StageSpec(((TrainConfig, "train"), (ModelConfig, "model")), ("data", "model")),
    "score": StageSpec(((ModelConfig, "model"), (ScoreConfig, "score"), (EmbedConfig, "embed")),
                       ("data", "model", "signals")),
    "cluster": StageSpec(((ClusterConfig, "cluster"),), ("signals",)),
    "judge": StageSpec(
        ((JudgeConfig, "judge"), (TeacherConfig, "teacher"), (ModelConfig, "model")),
        ("data", "model", "signals", "teacher", "templates"),
    ),
    "select": StageSpec(((SelectConfig, "select"),), ("data", "selection")),
    "refine": StageSpec(
        (
            (TeacherConfig, "teacher"),
            (JudgeConfig, "judge"),
            (ModelConfig, "model"),
            (ClusterConfig, "cluster"),
            (EmbedConfig, "embed"),
            (RefineConfig, "refine"),
        ),
        ("data", "model", "refine", "signals", "teacher", "templates"),
    ),
    "eval": StageSpec(((EvalConfig, "eval"), (ModelConfig, "model")), ("data", "model")),
}


UNTRACKED_PARAMS: frozenset[str] = frozenset({
    "teacher.api_key_env", "teacher.concurrency", "teacher.timeout_s", "teacher.max_retries",
    "teacher.backoff_base_s", "teacher.backoff_max_s", "teacher.max_retry_after_s", "teacher.cache_path",
    "teacher.mode", "teacher.batch_poll_s", "teacher.batch_retry", "teacher.rpm", "teacher.tpm",
    "teacher.max_requests", "teacher.max_total_tokens", "teacher.prices", "teacher.max_cost",
    "cluster.recall_queries", "score.api_key_env", "score.concurrency", "score.timeout_s", "score.max_retries",
})
"""Keys a stage reads that cannot change its outputs, so they are left out of every stage's `params:` and changing
one re-runs nothing: how teacher requests are sent (how many at once, how long to wait, how often to retry, which
variable holds the key, where replies are cached, live or as a batch, at what rate; a reply is the same whichever
way it arrived, and a request that failed shows in the stage's failure counts; likewise for the score stage's
inference servers, where a failed request fails the stage), the spending caps (a cap that stops a request fails the
stage, so no recorded output depends on one) and how many queries estimate the kNN recall (a diagnostic figure in
the metrics). Batch sizes and token budgets stay tracked: a different batch can change float
results in the last bits."""


def stage_param_keys(kind: str) -> list[str]:
    """The dotted params.yaml keys a stage kind tracks (`params:` in dvc.yaml): those it reads, in section order then
    field order, less `UNTRACKED_PARAMS`."""
    keys = [key for cls, name in STAGE_SPECS[kind].sections for key in param_keys(cls, name)]
    return [key for key in keys if key not in UNTRACKED_PARAMS]
