"""`middo diff` (what changed between two datasets) and `middo report` (one self-contained HTML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from middo.data.schema import read_samples
from middo.report.diff import diff_datasets, resolve_dataset, rounds_lineage
from middo.report.examples import format_example, lineage_examples

app = typer.Typer()


@app.command()
def diff(
    before: Annotated[str, typer.Argument(help="Dataset Parquet file, or round n (data/r<n>/dataset.parquet).")],
    after: Annotated[str, typer.Argument(help="Dataset Parquet file, or a round number.")],
    show: Annotated[int, typer.Option(min=0, help="Print this many examples per operation, before and after.")] = 0,
    project: Annotated[Path, typer.Option(help="Project root that round numbers are resolved in.")] = Path("."),
) -> None:
    """Count and list kept, replaced (with parent and op), added and removed samples between two datasets.

    Between round numbers more than one apart, lineage is followed through the rounds in between.

    Examples: `middo diff 0 1 --show 3`, `middo diff data/r1/dataset.parquet data/r2/dataset.parquet`.
    """
    frame_a = read_samples(resolve_dataset(before, project))
    frame_b = read_samples(resolve_dataset(after, project))
    rounds = before.isdigit() and after.isdigit() and int(before) < int(after)
    lineage = rounds_lineage(project, int(before), int(after)) if rounds else None
    result = diff_datasets(frame_a, frame_b, lineage)
    counts = result.counts()
    typer.echo(f"{before} ({frame_a.height} samples) -> {after} ({frame_b.height} samples)")
    typer.echo("  ".join(f"{name}: {count}" for name, count in counts.items()))
    for change in result.replaced:
        typer.echo(f"replaced {change.parent} -> {change.id} ({change.op})")
    for change in result.added:
        typer.echo(f"added    {change.id} ({change.op}, parent {change.parent})")
    for sample_id in result.removed:
        typer.echo(f"removed  {sample_id}")
    for op in sorted({change.op for change in [*result.replaced, *result.added]} if show else ()):
        changes = [change for change in [*result.replaced, *result.added] if change.op == op]
        for example in lineage_examples(frame_a, changes, frame_b, show):
            typer.echo("\n" + format_example(example))


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    project: Annotated[Path, typer.Option(help="Project root (holds params.yaml and data/r<n>/).")] = Path("."),
) -> None:
    """Write one self-contained HTML report of every round: flags, signals, gate, teacher tokens, examples, eval.

    Works with whatever outputs exist; missing rounds and metrics are shown as missing. Example: `middo report`.
    """
    from middo.report.html import write_report

    path = write_report(project, output)
    typer.echo(f"wrote {path}")
