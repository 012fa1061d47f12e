"""The demo's own params: what the repository's params.yaml sets beyond the real-use defaults.

`render_params(DEMO_PARAMS)` writes the repository's params.yaml (a test keeps the two equal).
"""

from __future__ import annotations

DEMO_PARAMS: dict[str, dict] = {
    "data": {"seed": "data/demo/seed.jsonl", "eval": "data/demo/eval.jsonl"},
    "model": {"base": "models/base"},
    "pretrain": {"corpus": "data/demo/corpus.txt", "epochs": 4},
    # the 0.76M model needs many passes and a high rate to learn the task families within the demo's minutes
    "train": {"epochs": 40, "lr": 0.002, "scheduler": "cosine_with_min_lr", "min_lr_ratio": 0.1, "warmup_ratio": 0.05,
              "token_budget": 1024, "gradient_checkpointing": False, "save_steps": 0},
    # the round model rating itself is at chance on the demo (README: docs/results.md); the simulated judge rates
    "judge": {"mode": "openai"},
    "select": {"m_quality": 0.25},
    "teacher": {"backend": "sim", "model": "middo-sim", "options": {"error_rate": 0.1}},
    # the held-out set is scored through lm-eval (its local task, per family too), so middo does not generate twice
    "eval": {"exact_match": False, "tasks": ["data/demo/tasks/middo_demo"], "batch_size": 32},
}
