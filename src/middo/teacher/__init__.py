"""The teacher layer: one interface over an OpenAI-compatible endpoint, a local model, or the demo's simulation.

```python
teacher = make_teacher(section(TeacherConfig, params, "teacher"))
replies = teacher.complete([ChatRequest(messages, temperature=0.0, max_tokens=256, op="simplify")])
```
"""

from __future__ import annotations

from typing import Any

from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatReply, ChatRequest, Teacher, Usage, failed

__all__ = ["ChatReply", "ChatRequest", "Teacher", "TeacherConfig", "Usage", "failed", "make_teacher"]


def make_teacher(cfg: TeacherConfig, local_model: Any = None) -> Teacher:
    """The teacher that `cfg.backend` names.

    `local_model` (backend `local` only): a `(model, tokenizer)` pair already in memory; without it the model is
    loaded from `cfg.model`. Backend `sim` is built by `middo.demo.sim_teacher.make_sim_teacher(cfg)`.
    """
    if cfg.backend == "openai":
        from middo.teacher.client import OpenAITeacher

        return OpenAITeacher(cfg)
    if cfg.backend == "local":
        from middo.teacher.local import LocalTeacher

        return LocalTeacher.create(cfg, local_model)
    from middo.demo.sim_teacher import make_sim_teacher

    return make_sim_teacher(cfg)
