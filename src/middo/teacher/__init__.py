"""The teacher layer: one interface over an OpenAI-compatible endpoint, a local model, or a plugin backend.

```python
with make_teacher(section(TeacherConfig, params, "teacher")) as teacher:
    replies = teacher.complete([ChatRequest(messages, temperature=0.0, max_tokens=256, op="simplify")])
```
"""

from __future__ import annotations

from typing import Any

from middo.teacher.config import TeacherConfig
from middo.teacher.registry import available_backends, plugin_factory, register_backend
from middo.teacher.types import ChatReply, ChatRequest, Teacher, Usage, failed

__all__ = ["ChatReply", "ChatRequest", "Teacher", "TeacherConfig", "Usage", "available_backends", "failed",
           "make_teacher", "register_backend"]


def make_teacher(cfg: TeacherConfig, local_model: Any = None) -> Teacher:
    """The teacher that `cfg.backend` names; use it as a context manager (or call `close()`) when done.

    `local_model` (backend `local` only): a `(model, tokenizer)` pair already in memory; without it the model is
    loaded from `cfg.model`. Any other backend name is a plugin (`middo.teacher.registry`).
    """
    if cfg.backend == "openai":
        from middo.teacher.client import OpenAITeacher

        return OpenAITeacher(cfg)
    if cfg.backend == "local":
        from middo.teacher.local import LocalTeacher

        return LocalTeacher.create(cfg, local_model)
    return plugin_factory(cfg.backend)(cfg)
