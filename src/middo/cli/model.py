"""`middo model init` (build a small base model) and `middo model convert-gguf` (GGUF -> safetensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(help="Build or convert base models.", no_args_is_help=True)


@app.command("init")
def init(
    output: Annotated[Path, typer.Option(help="Directory to write the model and tokenizer to.")],
    texts: Annotated[
        list[Path], typer.Option(help="Text file (one text per line) or dataset .parquet; repeat for several.")
    ],
    size: Annotated[str, typer.Option(help="tiny (~0.8M parameters: CPU demo, tests) or small (~4.6M).")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Train a byte-level BPE tokenizer on TEXTS and build a randomly initialised Llama model in OUTPUT.

    The directory loads with `from_pretrained` like any hub model; pretrain it with `python -m stages.pretrain`.

    Example: `middo model init --output models/scratch --texts data/demo/corpus.txt --size tiny`.
    """
    from middo.model.build import init_base_model

    init_base_model(output, texts, _size(size), seed=seed)
    typer.echo(f"wrote {size} base model to {output}")


@app.command("convert-gguf")
def convert_gguf(
    gguf: Annotated[Path, typer.Argument(help="The .gguf file to convert.")],
    output: Annotated[Path, typer.Option(help="Directory to write the safetensors model and tokenizer to.")],
    dtype: Annotated[str, typer.Option(help="Saved weight type: float32 or bfloat16.")] = "float32",
) -> None:
    """Dequantise a GGUF checkpoint once into a safetensors model dir (then set `model.base` to OUTPUT).

    Example: `middo model convert-gguf SmolLM2-135M-Instruct.Q4_1.gguf --output models/smollm2`.
    """
    from middo.model.gguf import convert_gguf as convert

    if dtype not in ("float32", "bfloat16"):
        raise typer.BadParameter(f"{dtype!r}; use float32 or bfloat16", param_hint="--dtype")
    if gguf.suffix != ".gguf" or not gguf.is_file():
        raise typer.BadParameter(f"{gguf}: no such .gguf file", param_hint="GGUF")
    convert(gguf, output, dtype)
    typer.echo(f"wrote {output}; set model.base: {output} and model.gguf_file: null in params.yaml")


def _size(size: str) -> Literal["tiny", "small"]:
    if size not in ("tiny", "small"):
        raise typer.BadParameter(f"{size!r}; choose tiny or small", param_hint="--size")
    return size  # type: ignore[return-value]
