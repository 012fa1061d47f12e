"""Shared fixtures: a tiny real model built from a config (no downloads)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

# Tiny models gain nothing from intra-op threads, and on a shared machine OpenMP threads that spin-wait for busy
# cores make each step many times slower; set before torch is imported. Override by exporting OMP_NUM_THREADS.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # so tests can call `stages.<name>.main([...])` for end-to-end checks
    sys.path.insert(0, str(REPO_ROOT))

TOPICS = ["cat", "dog", "river", "number", "planet", "garden", "train", "letter", "house", "color"]
VERBS = ["sees", "likes", "finds", "counts", "paints", "visits", "answers", "moves"]
EXTRAS = ["What is two plus two?", "The answer is 4.", "Explain why the sky is blue.", "Write a short poem."]


def corpus_lines(n_lines: int = 1500, seed: int = 0) -> list[str]:
    """Deterministic plain-text lines for training a tiny tokenizer and model."""
    rng = random.Random(seed)
    lines = []
    for index in range(n_lines):
        words = [
            f"the {rng.choice(TOPICS)} {rng.choice(VERBS)} a {rng.choice(TOPICS)}" for _ in range(rng.randint(1, 4))
        ]
        lines.append(", ".join(words) + f". {rng.choice(EXTRAS)} {index % 100}")
    return lines


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A plain-text corpus file (one line per text)."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_corpus) -> Path:
    """A ~1M-parameter Llama with a BPE tokenizer and chat template, saved with save_pretrained. Do not modify it."""
    from middo.model.build import init_base_model

    return init_base_model(tmp_path_factory.mktemp("tiny_model"), [tiny_corpus], size="tiny", seed=0)


def stage_error(capsys, main, args: list[str]) -> str:
    """Run a stage script's `main(args)`, expecting its one-line error and exit code 1; return that line."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    return errors[0]
