"""`middo ingest`, `middo export`, `middo stats`: getting data into and out of the sample schema."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


class InFormat(StrEnum):
    auto = "auto"
    alpaca = "alpaca"
    sharegpt = "sharegpt"
    openai = "openai"


class OutFormat(StrEnum):
    alpaca = "alpaca"
    sharegpt = "sharegpt"
    openai = "openai"


class OnError(StrEnum):
    fail = "fail"
    skip = "skip"


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(help="Files (.json/.jsonl/.parquet), dataset dirs or hub ids.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset Parquet file to write.")],
    format: Annotated[InFormat, typer.Option(help="Row format; auto detects it per input.")] = InFormat.auto,
    source: Annotated[str | None, typer.Option(help="`source` column value; default: each input's file stem.")] = None,
    on_error: Annotated[OnError, typer.Option(help="fail: stop at the first bad row; skip: drop and count.")] = (
        OnError.fail
    ),
) -> None:
    """Read Alpaca, ShareGPT or OpenAI-chat rows into one deduplicated middo dataset (Parquet).

    Every row becomes a seed sample (id = hash of its messages, round 0, op "seed"); fields that are not messages
    are kept in `meta`. With --on-error fail (the default) the first bad row stops the run and nothing is written;
    with --on-error skip bad rows are counted by reason. Counts go to OUTPUT.ingest.json.

    Examples:

      middo ingest data/alpaca.json --output data/seed.parquet

      middo ingest a.jsonl b.parquet --output data/seed.parquet --source mix --on-error skip

      middo ingest tatsu-lab/alpaca:train --output data/seed.parquet
    """
    from middo.data.ingest import ingest as run_ingest
    from middo.data.ingest import report_path
    from middo.log import write_metrics

    report = run_ingest(inputs, output, format.value, source, on_error.value)
    summary = write_metrics(report.to_dict(), report_path(output))
    typer.echo(f"wrote {report.samples} samples to {output} ({report.rows} rows read, "
               f"{report.duplicates} duplicates dropped)")
    for reason, count in sorted(report.skipped.items()):
        typer.echo(f"skipped {count} rows: {reason} (first: {report.examples[reason]})")
    typer.echo(f"counts in {summary}")


@app.command()
def export(
    input: Annotated[Path, typer.Argument(help="A middo dataset Parquet file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.jsonl; .json for one array).")],
    format: Annotated[OutFormat, typer.Option(help="Row format to write.")],
) -> None:
    """Write a middo dataset as Alpaca, ShareGPT or OpenAI-chat JSONL, e.g. to train with LLaMA-Factory.

    Fields kept in `meta` come back as top-level fields, so ingesting the export gives the same ids.

    Examples:

      middo export data/r2/dataset.parquet --output refined.jsonl --format sharegpt

      middo export data/r2/dataset.parquet --output refined_alpaca.json --format alpaca
    """
    from middo.data.export import export_file

    count = export_file(input, output, format.value)
    typer.echo(f"wrote {count} {format.value} rows to {output}")


@app.command()
def stats(
    path: Annotated[str, typer.Argument(help="A middo dataset (.parquet) or any input `middo ingest` reads.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Rows, turns, roles, length statistics (characters and words, no tokenizer) and duplicates of a dataset.

    An input that is not a middo dataset is ingested in memory first, skipping bad rows (their counts are shown).

    Examples:

      middo stats data/r0/dataset.parquet

      middo stats data/raw/sharegpt.json --json
    """
    from middo.data.stats import dataset_stats, format_stats, load_for_stats

    frame, ingest_counts = load_for_stats(path)
    result = dataset_stats(frame)
    if ingest_counts is not None:
        result["ingest"] = {key: ingest_counts[key] for key in ("rows", "duplicates", "skipped")}
    typer.echo(json.dumps(result, indent=2) if as_json else format_stats(result))
