"""Entry point of the `middo` console script; each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="middo",
    help="Model-informed closed-loop refinement of SFT data, as a cached DVC pipeline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Command modules register themselves on `app`; imported here so `middo --help` lists them all.
    from middo.cli import data as _data  # noqa: F401
    from middo.cli import demo as _demo  # noqa: F401
    from middo.cli import model as _model  # noqa: F401
    from middo.cli import pipeline as _pipeline  # noqa: F401
    from middo.cli import report as _report  # noqa: F401


_register()

if __name__ == "__main__":
    app()
