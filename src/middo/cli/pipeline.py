"""`middo unroll` (params.yaml -> dvc.yaml) and `middo init` (scaffold a new project)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def unroll(
    rounds: Annotated[int | None, typer.Option(min=1, help="Rounds (default: params.yaml loop.rounds).")] = None,
    params: Annotated[Path, typer.Option(help="Params file the pipeline is built from.")] = Path("params.yaml"),
    output: Annotated[Path, typer.Option(help="Pipeline file to write.")] = Path("dvc.yaml"),
    sync_params: Annotated[
        bool, typer.Option(help="First rewrite the params file: keep your values, add new fields, drop unknown ones.")
    ] = False,
) -> None:
    """Write the unrolled DVC pipeline (train, score, cluster, judge, select, refine, eval per round).

    Examples: `middo unroll`, `middo unroll --rounds 3 && dvc repro`, `middo unroll --sync-params` (after upgrading).
    """
    from middo.config import load_params
    from middo.pipeline.params_file import sync_params as synced
    from middo.pipeline.unroll import unroll as write_unrolled

    if sync_params:
        text, dropped = synced(load_params(params))
        params.write_text(text, encoding="utf-8")
        typer.echo(f"rewrote {params}" + (f"; dropped unknown keys {dropped}" if dropped else ""))
    path = write_unrolled(params, rounds, output)
    typer.echo(f"wrote {path}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="New project directory (must not exist or be empty).")],
    data: Annotated[str, typer.Option(help="Seed dataset: Alpaca/ShareGPT/OpenAI chat file or `datasets` dir/id.")],
    model: Annotated[str, typer.Option(help="Base model M0: local path or hub id of a causal LM.")],
    eval_data: Annotated[
        str | None, typer.Option("--eval", help="Held-out eval set; default: hold out --eval-size samples of --data.")
    ] = None,
    eval_size: Annotated[int, typer.Option(min=1, help="Samples held out of --data when --eval is not given.")] = 50,
    teacher_url: Annotated[str | None, typer.Option(help="OpenAI-compatible teacher endpoint (base URL).")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="Teacher model name at --teacher-url.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Refinement rounds (params.yaml loop.rounds).")] = 2,
) -> None:
    """Scaffold a project: git + dvc repos, params.yaml, dvc.yaml, ingested data and the stage scripts.

    Example: `middo init myproj --data alpaca.json --model Qwen/Qwen2.5-0.5B --teacher-url http://localhost:8000/v1
    --teacher-model Qwen/Qwen2.5-7B-Instruct`, then `cd myproj && dvc repro`.
    """
    if (teacher_url is None) != (teacher_model is None):
        typer.echo("error: pass --teacher-url and --teacher-model together (or neither for the simulated teacher)",
                   err=True)
        raise typer.Exit(2)
    from middo.pipeline.scaffold import ProjectSpec, init_project

    spec = ProjectSpec(data, model, eval_data, eval_size, teacher_url, teacher_model, rounds)
    created = init_project(directory, spec)
    if teacher_url is None:
        typer.echo("note: teacher.backend is `sim`, the demo's SIMULATED teacher, which only knows the demo's tasks; "
                   "set teacher.backend/base_url/model in params.yaml (or pass --teacher-url) for real data")
    typer.echo(f"created {created}; next: cd {created} && git add -A && git commit -m init && dvc repro")
