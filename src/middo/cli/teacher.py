"""`middo estimate` (the dry run of a round's teacher requests) and `middo teacher write-batch | load-batch`
(offline batches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from middo.errors import InputError

if TYPE_CHECKING:
    from middo.teacher.dryrun import Estimate

root = typer.Typer()
app = typer.Typer(help="The teacher's batch files: write one for `vllm run-batch`, load its output into the cache.",
                  no_args_is_help=True)

RoundOption = Annotated[int | None, typer.Option(
    "--round", min=1,
    help="Round whose refine stage to look at (default: the first round with flags but no refined dataset).")]
ParamsOption = Annotated[Path, typer.Option(help="Params file (sections teacher and refine).")]
DataOption = Annotated[Path, typer.Option(help="Project root that round paths are resolved in.")]


def refine_inputs(round_number: int | None, project: Path) -> tuple[int, Path, Path, Path]:
    """(round, D(r-1), flags, knn) of the next refine stage: data/r<p>/dataset.parquet and data/r<r>/{flags,knn}."""
    data = project / "data"
    if round_number is None:
        rounds = sorted(int(p.parent.name[1:]) for p in data.glob("r*/flags.parquet") if p.parent.name[1:].isdigit())
        pending = [r for r in rounds if not (data / f"r{r}" / "dataset.parquet").exists()]
        if not pending:
            raise InputError(f"{data}: no round has flags without a refined dataset; run the stages up to `select` "
                             "of the next round (`dvc repro select_r<r>`), or pass --round")
        round_number = pending[0]
    paths = (data / f"r{round_number - 1}" / "dataset.parquet", data / f"r{round_number}" / "flags.parquet",
             data / f"r{round_number}" / "knn.parquet")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"round {round_number}: {', '.join(missing)} missing; run the stages before refine first")
    return round_number, *paths


def _configs(params: Path):
    from middo.config import load_params, section
    from middo.refine.config import RefineConfig
    from middo.teacher.config import TeacherConfig

    loaded = load_params(params)
    return section(RefineConfig, loaded, "refine"), section(TeacherConfig, loaded, "teacher")


def estimate_inputs(round_number: int | None, project: Path) -> tuple[int, Path, Path | None, Path | None]:
    """`refine_inputs`, except that an explicit round whose select stage has not run yet needs only D(r-1) (the judge
    stage's input): flags and knn are then None."""
    if round_number is not None:
        data = project / "data" / f"r{round_number - 1}" / "dataset.parquet"
        flags, knn = (project / "data" / f"r{round_number}" / f"{name}.parquet" for name in ("flags", "knn"))
        if data.exists() and not (flags.exists() and knn.exists()):
            return round_number, data, None, None
    return refine_inputs(round_number, project)


@root.command()
def estimate(
    round_number: RoundOption = None,
    params: ParamsOption = Path("params.yaml"),
    project: DataOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Dry run of a round's teacher requests: the judge stage's (`judge.mode: openai`), the refine stage's, and an
    upper bound of the refine gate's judge requests; prompt and completion tokens and cost; nothing is sent.

    Requests already in the request cache are free and not counted. The refine stage needs the round's flags: before
    `select` has run, `--round r` shows the judge stage only. Examples: `middo estimate`,
    `middo estimate --round 2 --json`.
    """
    _, teacher_cfg = _configs(params)
    round_number, data, flags, knn = estimate_inputs(round_number, project)
    judged = (project / "data" / f"r{round_number}" / "ratings.parquet").exists()
    parts = _estimates(params, data, flags, knn, judged)
    if as_json:
        typer.echo(json.dumps({"round": round_number, "judge_done": judged}
                              | {k: None if v is None else v.as_dict() for k, v in parts.items()}))
        return
    typer.echo(f"round {round_number} ({teacher_cfg.model} at {teacher_cfg.base_url or 'an unset base_url'}):")
    done = f" (already run: data/r{round_number}/ratings.parquet exists; a re-run, not in the total)"
    _show(f"judge stage{done if judged else ''}", parts["judge"], "judge.mode is not openai: no requests")
    _show("refine stage, the teacher", parts["refine"], f"needs data/r{round_number}/flags.parquet and knn.parquet: "
          f"run the stages up to select (`dvc repro select_r{round_number}`)",
          "in phase two, one per task until phase one's replies are cached")
    _show("refine stage, the gate's judge: an upper bound (every improve child rated, with its parent)",
          parts["gate_judge"], "no requests (refine.gate off, or judge.mode not openai)" if parts["refine"] else "",
          "for children not known yet (their replies not cached)")
    _show("round total, an upper bound", parts["total"], "", "provisional in all")


def _estimates(params: Path, data: Path, flags: Path | None, knn: Path | None, judged: bool) -> dict:
    """{judge, refine, gate_judge, total}: each an Estimate or None (a stage that asks the teacher nothing, or
    refine before its flags exist); the total leaves out a judge stage that has run (`judged`)."""
    from middo.config import load_params, section
    from middo.refine.estimate import estimate_gate, estimate_refine
    from middo.signals.config import JudgeConfig
    from middo.signals.judge_estimate import estimate_judge
    from middo.teacher.dryrun import total

    refine_cfg, teacher_cfg = _configs(params)
    judge_cfg = section(JudgeConfig, load_params(params), "judge")
    parts = {"judge": estimate_judge(data, judge_cfg, teacher_cfg), "refine": None, "gate_judge": None}
    if flags is not None and knn is not None:
        parts["refine"] = estimate_refine(data, flags, knn, refine_cfg, teacher_cfg)
        parts["gate_judge"] = estimate_gate(data, flags, knn, refine_cfg, judge_cfg, teacher_cfg)
    counted = [v for k, v in parts.items() if v is not None and not (k == "judge" and judged)]
    return parts | {"total": total(counted)}


def _show(title: str, result: Estimate | None, absent: str, provisional: str = "") -> None:
    """One stage's estimate as text, `provisional` saying what its provisional requests are; or `absent` (nothing
    when empty) when it has none."""
    if result is None:
        if absent:
            typer.echo(f"{title}: {absent}")
        return
    money = "no teacher.prices" if result.cost is None else f"{result.cost:.4f}"
    typer.echo(f"{title}:\n"
               f"  requests           {result.requests} (plus {result.cached} cached, free)"
               f"{_provisional(result, provisional)}\n"
               f"  prompt tokens      {result.prompt_tokens} ({result.token_count})\n"
               f"  completion tokens  {result.completion_tokens} (upper bound: each request's max_tokens)\n"
               f"  cost               {money}")


def _provisional(result: Estimate, what: str) -> str:
    """The note on requests counted before they can be written, if any."""
    if not result.provisional:
        return ""
    return f"\n                     of which {result.provisional} {what}: an upper bound"


@app.command("write-batch")
def write_batch(
    output: Annotated[Path, typer.Argument(help="Batch JSONL file to write (input of `vllm run-batch -i`).")],
    round_number: RoundOption = None,
    params: ParamsOption = Path("params.yaml"),
    project: DataOption = Path("."),
) -> None:
    """Write the uncached requests of a refine stage that are already known as one Batch JSONL (custom_id = cache key).

    Phase one first; once its replies are loaded, run again for phase two. Example:
    `middo teacher write-batch in.jsonl && vllm run-batch -i in.jsonl -o out.jsonl --model M &&
    middo teacher load-batch out.jsonl`.
    """
    from middo.refine.estimate import plan_refine
    from middo.teacher.batch import batch_lines

    refine_cfg, teacher_cfg = _configs(params)
    _, data, flags, knn = refine_inputs(round_number, project)
    todo = {p.key: p.request for p in plan_refine(data, flags, knn, refine_cfg, teacher_cfg)
            if p.exact and not p.cached}
    output.write_bytes(batch_lines(teacher_cfg, list(todo.values()), list(todo)))
    typer.echo(f"wrote {len(todo)} requests to {output}")


@app.command("load-batch")
def load_batch(
    output: Annotated[Path, typer.Argument(help="Batch output JSONL (`vllm run-batch -o`, or an OpenAI batch's).")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Put the replies of a batch output file into the request cache (teacher.cache_path), by custom_id."""
    from middo.config import load_params, section
    from middo.teacher.batch import load_batch_output
    from middo.teacher.cache import ReplyCache
    from middo.teacher.config import TeacherConfig

    cfg = section(TeacherConfig, load_params(params), "teacher")
    if not output.exists():
        raise InputError(f"{output}: not found; pass the file `vllm run-batch -o` wrote")
    cache = ReplyCache(cfg.cache_path or None)
    try:
        loaded, errors = load_batch_output(output, cache)
    finally:
        cache.close()
    typer.echo(f"loaded {loaded} replies into {cfg.cache_path}" + (f"; {errors} lines were errors" if errors else ""))
