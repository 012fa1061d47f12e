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


_register()

if __name__ == "__main__":
    app()
