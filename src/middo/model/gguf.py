"""One-time conversion of a GGUF checkpoint to a safetensors model dir (GGUF loads dequantise every time)."""

from __future__ import annotations

from pathlib import Path

from middo.log import get_logger
from middo.model.load import load_model

log = get_logger(__name__)


def convert_gguf(gguf_path: str | Path, output_dir: str | Path, dtype: str = "float32") -> Path:
    """Dequantise `gguf_path` (a .gguf file) with transformers and save model + tokenizer to `output_dir`.

    Afterwards set `model.base` to `output_dir` (and `model.gguf_file` to null): loads are then plain
    `from_pretrained` calls, much faster than reading the GGUF file each time.
    """
    model, tokenizer = load_model(gguf_path, device="cpu", dtype=dtype)
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    log.info("converted %s to %s (%s)", gguf_path, output_dir, dtype)
    return output_dir
