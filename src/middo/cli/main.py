"""Entry point of the `middo` console script: assembles the command modules into one Typer app."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from middo.cli import data, demo, model, pipeline, report, teacher
from middo.errors import MiddoError


class MiddoGroup(TyperGroup):
    """The root command group: a `MiddoError` from any command ends the run with one line on stderr."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; report a `MiddoError` as `error: <message>` and exit code 1, without a traceback."""
        try:
            return super().invoke(ctx)
        except MiddoError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc


app = typer.Typer(
    name="middo",
    cls=MiddoGroup,
    help="Model-informed closed-loop refinement of SFT data, as a cached DVC pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app)
app.add_typer(pipeline.app)
app.add_typer(report.app)
app.add_typer(demo.app, name="demo")
app.add_typer(model.app, name="model")
app.add_typer(teacher.root)
app.add_typer(teacher.app, name="teacher")

if __name__ == "__main__":
    app()
