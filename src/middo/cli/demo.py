"""`middo demo` (run the bundled demo and score it) and `middo demo generate` (write the demo's task suite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from middo.errors import InputError

app = typer.Typer(
    help="The bundled offline demo: a task suite with planted defects, a SIMULATED teacher and judge.",
    invoke_without_command=True,
)


@app.callback()
def run(
    ctx: typer.Context,
    project: Annotated[Path, typer.Option(help="Project directory holding params.yaml and dvc.yaml.")] = Path("."),
    repro: Annotated[bool, typer.Option(help="Run `dvc repro` first; --no-repro only prints the summary.")] = True,
    report: Annotated[Path, typer.Option(help="HTML report to write, relative to the project.")] = Path("report.html"),
) -> None:
    """Run the demo pipeline (`dvc repro`), print which planted defects each signal found and eval@1 vs final, and
    write the HTML report.

    Examples: `middo demo`, `middo demo --no-repro` (summary and report of the last run).
    """
    if ctx.invoked_subcommand is not None:
        return
    from middo.demo.report import demo_summary, format_summary
    from middo.report.html import write_report

    if repro:
        _repro(project)
    typer.echo(format_summary(demo_summary(project)))
    written = write_report(project, report if report.is_absolute() else project / report)
    typer.echo(f"report: {written.resolve()} (open it in a browser)")


def _repro(project: Path) -> None:
    if not (project / "data" / "demo" / "seed.jsonl").exists():
        raise InputError(f"{project}/data/demo/seed.jsonl is missing; run `middo demo generate` first")
    if not (project / "dvc.yaml").exists():
        from middo.pipeline.unroll import unroll

        typer.echo(f"no dvc.yaml: writing {unroll(project / 'params.yaml', None, project / 'dvc.yaml')}")
    typer.echo("running `dvc repro` (teacher and judge are SIMULATED when params.yaml has teacher.backend: sim)")
    # dvc.yaml runs `python -m stages.<name>`: put this interpreter first so an unactivated venv still works.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, check=False)
    if result.returncode != 0:
        typer.echo(f"error: `dvc repro` failed with exit code {result.returncode}; see its output above", err=True)
        raise typer.Exit(result.returncode)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory for seed.jsonl, eval.jsonl, corpus.txt and README.md.")] = Path(
        "data/demo"
    ),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes identical files.")] = 0,
) -> None:
    """Write the demo task suite: a seed set with planted defects, a clean eval set, a pretraining corpus.

    Example: `middo demo generate --out data/demo --seed 0`.
    """
    from middo.demo.generate import SuiteConfig, write_suite

    paths = write_suite(out, SuiteConfig(seed=seed))
    for path in paths.values():
        typer.echo(f"wrote {path}")
