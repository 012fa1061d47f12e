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


class Conversations(StrEnum):
    normalise = "normalise"
    strict = "strict"


class EmptyText(StrEnum):
    drop = "drop"
    bad_row = "bad_row"


class SpecialTokens(StrEnum):
    escape = "escape"
    drop = "drop"
    keep = "keep"


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(help="Files (.json/.jsonl/.parquet), dataset dirs or hub ids.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Dataset Parquet file to write.")],
    format: Annotated[InFormat, typer.Option(help="Row format; auto detects it per input.")] = InFormat.auto,
    source: Annotated[str | None, typer.Option(help="`source` column value; default: each input's file stem.")] = None,
    on_error: Annotated[OnError, typer.Option(help="fail: stop at the first bad row; skip: drop and count.")] = (
        OnError.fail
    ),
    conversations: Annotated[Conversations, typer.Option(
        help="normalise: drop leading assistant turns, merge same-role turns (counted); strict: such rows are bad.",
    )] = Conversations.normalise,
    empty_text: Annotated[EmptyText, typer.Option(
        help="A turn with no visible text (whitespace, U+200B...): drop the row (counted), or treat it as a bad row.",
    )] = EmptyText.drop,
    special_tokens: Annotated[SpecialTokens, typer.Option(
        help="Literal <|endoftext|>, <s>, ... in text: escape (U+200B after '<'), drop the row, or keep (counted).",
    )] = SpecialTokens.escape,
) -> None:
    """Read Alpaca, ShareGPT or OpenAI-chat rows into one deduplicated middo dataset (Parquet).

    Every row becomes a seed sample (id = hash of its messages, round 0, op "seed"); fields that are not messages
    are kept in `meta`. With --on-error fail (the default) the first bad row stops the run and nothing is written;
    with --on-error skip bad rows are counted by reason. Conversations that start with an assistant turn or have two
    turns of one role in a row are repaired (--conversations strict refuses them); rows with an empty turn are
    dropped; literal special tokens are escaped. Counts by reason go to OUTPUT.ingest.json.

    Examples:

      middo ingest data/alpaca.json --output data/seed.parquet

      middo ingest a.jsonl b.parquet --output data/seed.parquet --source mix --on-error skip

      middo ingest tatsu-lab/alpaca:train --output data/seed.parquet
    """
    from middo.data.ingest import ingest as run_ingest
    from middo.data.ingest import report_path
    from middo.data.normalise import IngestPolicy
    from middo.log import write_metrics

    policy = IngestPolicy(conversations.value, empty_text.value, special_tokens.value)
    report = run_ingest(inputs, output, format.value, source, on_error.value, policy)
    summary = write_metrics(report.to_dict(), report_path(output))
    typer.echo(f"wrote {report.samples} samples to {output} ({report.rows} rows read, "
               f"{report.duplicates} duplicates dropped)")
    for reason, count in sorted(report.repaired.items()):
        typer.echo(f"repaired {count} rows: {reason}")
    for what, counts in (("dropped", report.dropped), ("skipped", report.skipped)):
        for reason, count in sorted(counts.items()):
            typer.echo(f"{what} {count} rows: {reason} (first: {report.examples[reason]})")
    typer.echo(f"counts in {summary}")


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write (.jsonl; .json for one array).")],
    format: Annotated[OutFormat, typer.Option(help="Row format to write.")],
    input: Annotated[str, typer.Argument(
        help="A middo dataset Parquet file, a round number n (data/r<n>/dataset.parquet), or `last` (the default: "
             "round loop.rounds of the project's params.yaml, the refined data)."
    )] = "last",
    project: Annotated[Path, typer.Option(help="Project root that round numbers are resolved in.")] = Path("."),
    notes: Annotated[bool, typer.Option(
        help="Keep middo's own notes (meta `refine` attempt history, `_repairs`) in the rows; off, the file holds "
             "only the conversations and the fields they came with."
    )] = False,
) -> None:
    """Write a middo dataset as Alpaca, ShareGPT or OpenAI-chat JSONL, e.g. to train with LLaMA-Factory.

    Fields the input rows carried come back as top-level fields, so ingesting the export gives the same ids.

    Examples:

      middo export --output refined.jsonl --format sharegpt          (the last round's dataset)

      middo export 0 --output seed_alpaca.json --format alpaca

      middo export data/r1/dataset.parquet --output r1.jsonl --format openai
    """
    from middo.data.export import export_file
    from middo.report.revisions import Side

    spec = Side(project).round_spec(input)
    path = project / f"data/r{spec}/dataset.parquet" if spec.isdigit() else Path(spec)
    count = export_file(path, output, format.value, notes)
    typer.echo(f"wrote {count} {format.value} rows of {path} to {output}")


@app.command()
def stats(
    path: Annotated[str, typer.Argument(help="A middo dataset (.parquet) or any input `middo ingest` reads.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    params: Annotated[Path | None, typer.Option(
        help="A project's params.yaml: token lengths with its model.base tokenizer, cut at its model.max_length."
    )] = None,
    model: Annotated[str | None, typer.Option(
        help="Token lengths with this model's tokenizer and chat template (dir, .gguf or hub id)."
    )] = None,
    max_length: Annotated[int | None, typer.Option(min=16, help="Context to count truncations at (default: "
                                                   "params' model.max_length, else 1024).")] = None,
) -> None:
    """Rows, turns, roles, length statistics and duplicates of a dataset; with --params or --model also its token
    lengths under the model's chat template and how many samples `model.max_length` will cut.

    An input that is not a middo dataset is ingested in memory first, skipping bad rows (their counts are shown).

    Examples:

      middo stats data/seed.jsonl --params params.yaml          (in a project: before `dvc repro`)

      middo stats data/raw/sharegpt.json --model ./smollm2 --max-length 2048 --json
    """
    from middo.data.stats import dataset_stats, format_stats, load_for_stats

    frame, ingest_counts = load_for_stats(path)
    result = dataset_stats(frame)
    if ingest_counts is not None:
        result["ingest"] = {key: ingest_counts[key] for key in ("rows", "duplicates", "skipped")}
    config = _model_config(params, model, max_length)
    if config is not None:
        from middo.model.lengths import length_report, load_tokenizer, token_lengths

        lengths = token_lengths(load_tokenizer(config), frame.select("id", "messages").iter_rows(named=True))
        result["tokens"] = length_report(lengths, config.max_length)
    typer.echo(json.dumps(result, indent=2) if as_json else format_stats(result))
    if "tokens" in result and not as_json:
        from middo.model.lengths import describe

        typer.echo(describe(result["tokens"]))


def _model_config(params: Path | None, model: str | None, max_length: int | None):
    """The `model` section to measure tokens with: params.yaml's, with --model / --max-length on top; None if
    neither a params file nor a model is given."""
    if params is None and model is None:
        return None
    from dataclasses import replace

    from middo.config import load_params, section
    from middo.model.config import ModelConfig

    values = dict(load_params(params).get("model") or {}) if params is not None else {}
    if model is not None:
        values["base"] = model
    base = values.get("base")
    if params is not None and model is None and base and (params.parent / base).exists():
        values["base"] = str(params.parent / base)  # a project path is relative to the project, not to the shell
    config = section(ModelConfig, {"model": values}, "model")
    return replace(config, max_length=max_length) if max_length is not None else config
