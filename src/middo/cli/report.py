"""`middo diff` (what changed between two datasets) and `middo report` (one self-contained HTML file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from middo.report.compare import compare
from middo.report.diff_output import LIMIT, diff_document, diff_lines
from middo.report.revisions import Side

app = typer.Typer()


@app.command()
def diff(
    before: Annotated[str, typer.Argument(
        help="Dataset Parquet file, round n (data/r<n>/dataset.parquet), or `last` (round loop.rounds)."
    )],
    after: Annotated[str, typer.Argument(help="Dataset Parquet file, a round number, or `last`.")],
    rev: Annotated[list[str] | None, typer.Option(
        help="Git revision or DVC experiment of BEFORE, given again for AFTER; a side without one is the workspace."
    )] = None,
    show: Annotated[int, typer.Option(min=0, help="Print this many examples per operation, before and after.")] = 0,
    limit: Annotated[int, typer.Option(min=0, help="List at most this many ids per category (0: all).")] = LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")] = False,
    project: Annotated[Path, typer.Option(help="Project root that round numbers are resolved in.")] = Path("."),
) -> None:
    """Count and list kept, replaced (with parent and op), added, reverted and removed samples between two datasets,
    and, between the same round of two revisions, the samples whose flags changed.

    Between round numbers more than one apart, lineage is followed through the rounds in between. At a revision the
    files are read through DVC (its cache, else the default remote), nothing is checked out.

    The summary (counts, per operation, flags changed) comes first, then at most --limit ids per category.

    Examples: `middo diff 0 last --show 3`; `middo diff 1 1 --rev main --rev exp-abc12` (an experiment against a
    branch); `middo diff 2 2 --rev HEAD~1` (the last commit's round 2 against the workspace's); `--json` for scripts.
    """
    revs = rev or []
    if len(revs) > 2:
        raise typer.BadParameter(f"got {len(revs)} revisions; give one (BEFORE) or two (BEFORE, AFTER)",
                                 param_hint="--rev")
    sides = (Side(project, revs[0] if revs else None), Side(project, revs[1] if len(revs) > 1 else None))
    before, after = sides[0].round_spec(before), sides[1].round_spec(after)
    comparison = compare(sides[0], before, sides[1], after)
    if as_json:
        described = ({"dataset": before, "rev": sides[0].rev}, {"dataset": after, "rev": sides[1].rev})
        typer.echo(json.dumps(diff_document(comparison, described, limit), indent=1))
        return
    names = (f"{before} @ {sides[0].label}", f"{after} @ {sides[1].label}") if revs else (before, after)
    for line in diff_lines(comparison, names, limit, show):
        typer.echo(line)


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    project: Annotated[Path, typer.Option(help="Project root (holds params.yaml and data/r<n>/).")] = Path("."),
    rev: Annotated[list[str] | None, typer.Option(
        help="Compare two revisions or DVC experiments side by side (give it twice; once: against the workspace)."
    )] = None,
) -> None:
    """Write one self-contained HTML report of every round: flags, signals, gate, teacher tokens, examples, eval.

    Works with whatever outputs exist; missing rounds and metrics are shown as missing. With `--rev A --rev B` the
    file puts the two revisions' rounds side by side instead: params that differ, datasets, flags, refine, eval.

    Examples: `middo report`, `middo report --rev main --rev exp-abc12 --output compare.html`.
    """
    revs = rev or []
    if len(revs) > 2:
        raise typer.BadParameter(f"got {len(revs)} revisions; give one or two", param_hint="--rev")
    if revs:
        from middo.report.comparison import write_comparison

        path = write_comparison(project, (revs[0], revs[1] if len(revs) > 1 else None), output)
    else:
        from middo.report.html import write_report

        path = write_report(project, output)
    typer.echo(f"wrote {path}")
