"""The judge stage: six 0-10 ratings per sample, `quality` = their mean; modes `logits`, `generate`, `openai`.

A rating that cannot be read (an unparseable reply, a failed request, too little probability on the score
tokens) is NaN and counted in the metrics; it never becomes 0. A quality signal with more NaN ratings than
`judge.max_failure_rate` allows, or without spread, is unusable (`judge_health`): the stage fails, or drops it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from middo.data.schema import read_samples
from middo.errors import ConfigError
from middo.log import get_logger, write_metrics
from middo.model import ranks
from middo.model.config import ModelConfig
from middo.model.load import load_model
from middo.signals.config import JudgeConfig
from middo.signals.judge_health import JudgeFailure, apply_health  # noqa: F401 (re-exported)
from middo.signals.judge_local import LocalRatings, rate_local
from middo.signals.judge_openai import rate_openai
from middo.signals.judge_parse import MAX_SCORE, PARSERS
from middo.signals.judge_prompts import ASPECTS, JudgePrompts, load_judge_prompts
from middo.tables import write_table
from middo.teacher import Teacher

log = get_logger(__name__)


@dataclass
class JudgeResult:
    """The ratings table (dataset order) and the metrics."""

    table: pl.DataFrame
    metrics: dict


def ratings_table(ids: list[str], ratings: np.ndarray) -> pl.DataFrame:
    """`id`, the six ratings [N, 6] and `quality` (mean of the non-NaN ratings, NaN when all are NaN)."""
    ratings = np.asarray(ratings, dtype=np.float64)
    counts = np.isfinite(ratings).sum(axis=1)
    quality = np.where(counts > 0, np.nansum(ratings, axis=1) / np.maximum(counts, 1), np.nan)
    columns = {"id": pl.Series(ids, dtype=pl.Utf8)}
    columns |= {aspect: pl.Series(ratings[:, j], dtype=pl.Float64) for j, aspect in enumerate(ASPECTS)}
    columns["quality"] = pl.Series(quality, dtype=pl.Float64)
    return pl.DataFrame(columns)


def histogram(table: pl.DataFrame) -> pl.DataFrame:
    """Counts per integer score bin 0-10 (ratings rounded) of every rating column and `quality`; NaN left out."""
    out = {"score": list(range(MAX_SCORE + 1))}
    for name in (*ASPECTS, "quality"):
        values = table[name].to_numpy()
        bins = np.rint(values[np.isfinite(values)]).astype(int)
        out[name] = np.bincount(bins, minlength=MAX_SCORE + 1)[: MAX_SCORE + 1].tolist()
    return pl.DataFrame(out)


@dataclass(frozen=True)
class JudgePaths:
    """Files of the judge stage."""

    data: Path
    """Dataset D(r-1) (Parquet)."""
    model: Path
    """Round model Mr (the judge in modes logits and generate)."""
    output: Path
    """Ratings table to write (Parquet)."""
    metrics: Path
    """Metrics JSON to write."""
    plot: Path
    """Histogram CSV of the ratings (DVC plot data)."""


@dataclass(frozen=True)
class Judge:
    """Who rates: the judge settings, the rating prompts, the model that judges in the local modes, and the
    stage's teacher (which judges in mode `openai`)."""

    cfg: JudgeConfig
    model_path: str | Path
    model_cfg: ModelConfig
    teacher: Teacher | None = None
    prompts: JudgePrompts | None = None

    def rating_prompts(self) -> JudgePrompts:
        """The prompts given, else those of `judge.prompts`."""
        return self.prompts or load_judge_prompts(self.cfg.prompts, self.cfg.prompt_sees_response)


def gather_ratings(local: LocalRatings, order: list[str], state) -> LocalRatings | None:
    """Every process's share of the local ratings on process 0, in the dataset order `order`; None on the others."""
    columns = {"id": local.ids, "scores": local.scores, "mass": local.mass, "replies": local.replies}
    truncated = ranks.gather(local.truncated, state)
    merged = ranks.gather_rows({k: v for k, v in columns.items() if v is not None}, order, state, "judge ratings")
    if merged is None:
        return None
    return LocalRatings(merged["id"], merged.get("scores"), merged.get("mass"), merged.get("replies"), sum(truncated))


def _local_ratings(samples: list[dict], judge: Judge):
    """(ratings [N, 6], metrics) on process 0 (each process rates a share: `middo.model.ranks`); None on others."""
    model_cfg, judge_cfg = judge.model_cfg, judge.cfg
    state = ranks.start(model_cfg.device)
    model, tokenizer = load_model(judge.model_path, device=ranks.rank_device(model_cfg.device, state),
                                  dtype=model_cfg.dtype, trust_remote_code=model_cfg.trust_remote_code)
    generate = judge_cfg.mode == "generate"
    local = rate_local(model, tokenizer, ranks.shard(samples, state), judge_cfg.token_budget, generate,
                       judge_cfg.max_new_tokens, model_cfg.max_length, model_cfg.chat_template,
                       prompts=judge.rating_prompts())  # fmt: skip
    local = gather_ratings(local, [sample["id"] for sample in samples], state)
    ranks.stop(state)
    if local is None:
        return None
    metrics = {"truncated": local.truncated, "processes": state.num_processes}
    if generate:
        parse = PARSERS[judge_cfg.parse]
        ratings = np.array([[parse(reply) for reply in row] for row in local.replies], dtype=np.float64)
        metrics["parse_failures"] = int(np.isnan(ratings).sum())
        return ratings, metrics
    ratings = np.where(local.mass >= judge_cfg.min_score_mass, local.scores, np.nan)
    metrics |= {"score_mass_mean": float(local.mass.mean()) if local.mass.size else float("nan"),
                "score_mass_median": float(np.median(local.mass)) if local.mass.size else float("nan"),
                "score_mass_min": float(local.mass.min()) if local.mass.size else float("nan"),
                "low_score_mass": int((local.mass < judge_cfg.min_score_mass).sum())}
    return ratings, metrics


def judge_samples(samples: list[dict], judge: Judge) -> JudgeResult | None:
    """Rate `samples` (dicts with `id`, `messages`) with the configured judge; under a data-parallel launcher (local
    modes) the result is on process 0, None on the others."""
    started = time.perf_counter()
    if judge.cfg.mode == "openai":
        if judge.teacher is None:
            raise ConfigError("judge.mode is `openai` but the stage made no teacher; build one from the `teacher` "
                              "section with make_teacher and pass it")
        ratings, metrics = rate_openai(samples, judge.teacher, judge.cfg, judge.rating_prompts())
    else:
        local = _local_ratings(samples, judge)
        if local is None:
            return None
        ratings, metrics = local
    table = ratings_table([sample["id"] for sample in samples], ratings)
    n_ratings = ratings.size
    nan_ratings = int(np.isnan(ratings).sum())
    metrics = {
        "mode": judge.cfg.mode,
        "samples": len(samples),
        "ratings": n_ratings,
        "nan_ratings": nan_ratings,
        "nan_rate": nan_ratings / n_ratings if n_ratings else 0.0,
        "nan_quality": int(table["quality"].is_nan().sum()),
        **metrics,
        "seconds": time.perf_counter() - started,
    }
    if "parse_failures" in metrics:
        attempted = metrics.get("parsed_replies", n_ratings)
        metrics["parse_failure_rate"] = metrics["parse_failures"] / attempted if attempted else 0.0
    for name in (*ASPECTS, "quality"):
        values = table[name].to_numpy()
        metrics[f"{name}_mean"] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return JudgeResult(table, metrics)


def run_judge(paths: JudgePaths, judge: Judge) -> JudgeResult | None:
    """Read the dataset, rate it, write the ratings table, the metrics JSON (with the teacher's usage when it
    judged) and the histogram CSV."""
    frame = read_samples(paths.data)
    result = judge_samples(frame.select("id", "messages").to_dicts(), judge)
    if result is None:  # a data-parallel process other than 0: its ratings went to process 0
        return None
    if judge.teacher is not None:
        result.metrics["teacher_usage"] = judge.teacher.usage()
    result.table = apply_health(result.table, result.metrics, judge.cfg)
    write_table(result.table, paths.output)
    write_metrics(result.metrics, paths.metrics)
    paths.plot.parent.mkdir(parents=True, exist_ok=True)
    histogram(result.table).write_csv(paths.plot)
    log.info("judged %d samples (%s mode) in %.1fs: %d NaN ratings", len(frame), judge.cfg.mode,
             result.metrics["seconds"], result.metrics["nan_ratings"])
    if result.metrics["health"]["dropped"]:
        log.warning("judge: the quality signal is UNUSABLE and dropped (judge.on_unusable: drop): %s. `quality` is "
                    "NaN for every sample, so select flags no sample low_quality",
                    "; ".join(result.metrics["health"]["problems"]))
    return result
