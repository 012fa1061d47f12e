"""`middo unroll` (params.yaml -> dvc.yaml) and `middo init` (scaffold a new project)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from middo.cli.data import OnError
from middo.pipeline.presets import PRESETS, RECIPES

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


class JudgeMode(StrEnum):
    logits = "logits"
    generate = "generate"
    openai = "openai"


def _names(table: dict) -> str:
    return "; ".join(f"{name}: {entry.help}" for name, entry in table.items())


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="New project directory (must not exist or be empty).")],
    data: Annotated[str, typer.Option(help="Seed dataset: Alpaca/ShareGPT/OpenAI chat file or `datasets` dir/id.")],
    model: Annotated[str, typer.Option(help="Base model M0: local dir, .gguf file or hub id of a causal LM.")],
    eval_data: Annotated[
        str | None, typer.Option("--eval", help="Held-out eval set; default: hold out --eval-size samples of --data.")
    ] = None,
    eval_size: Annotated[int, typer.Option(min=1, help="Samples held out of --data when --eval is not given.")] = 50,
    teacher_url: Annotated[str | None, typer.Option(help="OpenAI-compatible teacher endpoint (base URL).")] = None,
    teacher_model: Annotated[str | None, typer.Option(
        help="Teacher model: its name at --teacher-url, or a local dir / .gguf / hub id with --teacher-backend local."
    )] = None,
    teacher_backend: Annotated[str | None, typer.Option(
        help="openai (default), local (a transformers model run in-process), or an installed plugin backend."
    )] = None,
    judge_mode: Annotated[JudgeMode | None, typer.Option(
        help="logits (default): the round model rates; generate: it writes the rating; openai: the teacher rates."
    )] = None,
    recipe: Annotated[str, typer.Option(help=f"Training recipe. {_names(RECIPES)}.")] = "full",
    preset: Annotated[list[str] | None, typer.Option(
        help=f"Named params overlay, repeatable, applied first. {_names(PRESETS)}."
    )] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Any param as section.key=value (YAML value), repeatable, applied last: --set train.lr=1e-5."
    )] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Refinement rounds (params.yaml loop.rounds).")] = None,
    on_error: Annotated[OnError | None, typer.Option(
        help="fail (default): stop at the first bad row; skip: drop and count them (data.on_error)."
    )] = None,
    copy_models: Annotated[bool, typer.Option(
        help="Track a local model under DVC at models/base (one copy, in the DVC cache); --no-copy-models refers to "
             "it in place by a relative path."
    )] = True,
) -> None:
    """Scaffold a project: git + dvc repos, params.yaml, dvc.yaml, ingested data and the stage scripts.

    Everything a first run needs comes from the flags, so params.yaml needs no editing. The data files and a local
    model are tracked by DVC; params.yaml and dvc.yaml hold no absolute path. Init reports the ingestion counts and
    the samples' token lengths under the model's tokenizer before any long stage runs.

    Examples:

      middo init myproj --data alpaca.json --model Qwen/Qwen2.5-0.5B-Instruct --teacher-url http://localhost:8000/v1
      --teacher-model Qwen/Qwen2.5-7B-Instruct

      middo init myproj --data chats.json --on-error skip --model ./smollm2 --teacher-backend local
      --teacher-model ./qwen-7b --judge-mode openai --recipe lora --preset cpu-trial --set model.max_length=768
    """
    if teacher_url is not None and teacher_model is None:
        typer.echo("error: --teacher-url needs --teacher-model (the model's name at that endpoint)", err=True)
        raise typer.Exit(2)
    if teacher_url is not None and teacher_backend not in (None, "openai"):
        typer.echo(f"error: --teacher-url is for the openai backend, not {teacher_backend!r}", err=True)
        raise typer.Exit(2)
    from middo.pipeline.project import ProjectSpec
    from middo.pipeline.scaffold import init_project

    spec = ProjectSpec(
        data, model, eval_data=eval_data, eval_size=eval_size, teacher_url=teacher_url, teacher_model=teacher_model,
        rounds=rounds, teacher_backend=teacher_backend, judge_mode=judge_mode.value if judge_mode else None,
        recipe=recipe, presets=tuple(preset or ()), settings=tuple(set_ or ()),
        on_error=on_error.value if on_error else None, copy_models=copy_models,
    )
    result = init_project(directory, spec)
    for name, line in result.ingest.items():
        typer.echo(f"{name}: {line}")
    if result.tokens is not None:
        from middo.model.lengths import describe

        typer.echo(describe(result.tokens))
    else:
        typer.echo(f"note: token lengths not measured: {result.note}")
    typer.echo(f"created {result.root}; next: cd {result.root} && git add -A && git commit -m init && dvc repro")
