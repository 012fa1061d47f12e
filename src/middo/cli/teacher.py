"""`middo estimate` (the dry run of a refine stage) and `middo teacher write-batch | load-batch` (offline batches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from middo.errors import InputError

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


@root.command()
def estimate(
    round_number: RoundOption = None,
    params: ParamsOption = Path("params.yaml"),
    project: DataOption = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Dry run of a refine stage: teacher requests, prompt and completion tokens and cost; nothing is sent.

    Requests already in the request cache are free and not counted. Examples: `middo estimate`,
    `middo estimate --round 2 --json`.
    """
    from middo.refine.estimate import estimate_refine

    refine_cfg, teacher_cfg = _configs(params)
    round_number, data, flags, knn = refine_inputs(round_number, project)
    result = estimate_refine(data, flags, knn, refine_cfg, teacher_cfg)
    if as_json:
        typer.echo(json.dumps({"round": round_number, **result.as_dict()}))
        return
    money = "no teacher.prices" if result.cost is None else f"{result.cost:.4f}"
    typer.echo(f"refine round {round_number} ({teacher_cfg.model} at {teacher_cfg.base_url or 'an unset base_url'}):\n"
               f"  requests           {result.requests} (plus {result.cached} cached, free)\n"
               f"  prompt tokens      {result.prompt_tokens} ({result.token_count})\n"
               f"  completion tokens  {result.completion_tokens} (upper bound: each request's max_tokens)\n"
               f"  cost               {money}")


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
