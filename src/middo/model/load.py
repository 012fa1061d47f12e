"""Load a causal LM and its tokenizer: a local dir, a hub id, or a GGUF file."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from middo.errors import InputError
from middo.log import get_logger

log = get_logger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str | None = None) -> torch.device:
    """`device` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` is bf16 on GPU and fp32 on CPU (bf16 matmuls on CPU are far slower)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}; use auto, float32 or bfloat16")
    return DTYPES[dtype]


def split_gguf(name_or_path: str | Path, gguf_file: str | None) -> tuple[str, str | None]:
    """Accept either (dir, file name) or a direct path to a .gguf file."""
    text = str(name_or_path)
    if gguf_file is None and text.endswith(".gguf"):
        path = Path(text)
        if not path.is_file():
            raise InputError(f"{path}: GGUF file not found")
        return str(path.parent), path.name
    return text, gguf_file


def looks_local(source: str) -> bool:
    """A filesystem path rather than a hub id (`owner/name`)."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or Path(source).exists()


def drop_gguf_quantizer(model: PreTrainedModel) -> None:
    """Forget the GGUF quantizer of a model whose weights were dequantised on load (plain float tensors).

    transformers keeps the quantizer attached, which makes the model refuse `save_pretrained` and full fine-tuning
    although nothing in it is quantized any more.
    """
    if all(param.is_floating_point() for param in model.parameters()):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config


def load_model(
    name_or_path: str | Path,
    gguf_file: str | None = None,
    device: str | None = None,
    dtype: str = "auto",
    quantization=None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load `(model, tokenizer)` in eval mode on `device` with `dtype`.

    `name_or_path` is a local model dir, a hub id, or a `.gguf` file (or a dir plus `gguf_file`). GGUF weights
    are dequantised on every load (slow): convert once with `middo model convert-gguf GGUF --output DIR`.
    `quantization` (a transformers quantization config, e.g. 4-bit for QLoRA) loads the weights quantized.
    `trust_remote_code` is always passed, so a model with its own code is refused (or run, when True), never asked
    about on a terminal.
    """
    source, gguf_file = split_gguf(name_or_path, gguf_file)
    if looks_local(source) and not Path(source).is_dir():
        raise InputError(f"{source}: no such model dir; pass a local model dir (see `middo model init`), a hub id "
                         "or a .gguf file")  # fmt: skip
    target = pick_device(device)
    torch_dtype = pick_dtype(dtype, target)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    extra["trust_remote_code"] = trust_remote_code
    loading = {"quantization_config": quantization, "device_map": {"": str(target)}} if quantization else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **extra, **loading)
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise InputError(
            f"model {source!r} ships its own Python code, which middo does not run unless told to; if you trust "
            "that code, set model.trust_remote_code: true (teacher.trust_remote_code for a local teacher)"
        ) from exc
    except OSError as exc:
        raise InputError(
            f"cannot load model {source!r}{f' ({gguf_file})' if gguf_file else ''}: {exc}; pass a local model dir "
            "(see `middo model init`), a hub id available offline, or a .gguf file"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding positions are always masked out
    if gguf_file:
        drop_gguf_quantizer(model)
    if not quantization:  # a quantized model is placed by its device_map and cannot be moved
        model.to(target)
    model.eval()
    log.info("loaded %s%s on %s as %s", source, f"/{gguf_file}" if gguf_file else "", target, torch_dtype)
    return model, tokenizer
