"""`teacher` params section, API key resolution and `make_teacher` dispatch."""

from __future__ import annotations

import pytest

from middo.config import section
from middo.errors import ConfigError
from middo.teacher import TeacherConfig, available_backends, make_teacher, register_backend, registry
from middo.teacher.client import OpenAITeacher, resolve_api_key


def test_defaults_and_params_section_load():
    cfg = section(TeacherConfig, {"teacher": {"backend": "openai", "concurrency": 16, "timeout_s": 5}}, "teacher")
    assert cfg.concurrency == 16 and cfg.timeout_s == 5.0 and cfg.api_key_env == "OPENAI_API_KEY"
    assert TeacherConfig().cache_path == ".middo-cache/teacher.sqlite"


@pytest.mark.parametrize(("values", "message"), [
    ({"concurrency": 0}, "teacher.concurrency"),
    ({"backend": "openai", "base_url": "localhost:8000"}, "teacher.base_url"),
    ({"api_key_env": "sk-abc123"}, "NAME of an environment variable"),
    ({"backoff_base_s": 2.0, "backoff_max_s": 1.0}, "teacher.backoff_max_s"),
    ({"backend": "openai", "options": {"error_rate": 0.1}}, "built-in backend 'openai' takes no options"),
    ({"backend": ""}, "teacher.backend is empty"),
    ({"max_retries": -1}, "teacher.max_retries"),
])
def test_bad_values_say_how_to_fix_them(values, message):
    with pytest.raises(ConfigError, match=message):
        TeacherConfig(**values)


def test_missing_key_for_a_remote_endpoint_names_the_variable(monkeypatch):
    monkeypatch.delenv("MIDDO_REMOTE_KEY", raising=False)
    cfg = TeacherConfig(backend="openai", base_url="https://api.example.com/v1", api_key_env="MIDDO_REMOTE_KEY")
    with pytest.raises(ConfigError, match="export MIDDO_REMOTE_KEY="):
        make_teacher(cfg)


def test_loopback_endpoint_needs_no_key_and_env_key_wins(monkeypatch):
    monkeypatch.delenv("MIDDO_LOCAL_KEY", raising=False)
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
        assert resolve_api_key(TeacherConfig(backend="openai", base_url=url, api_key_env="MIDDO_LOCAL_KEY")) == "EMPTY"
    monkeypatch.setenv("MIDDO_LOCAL_KEY", "token-1")
    assert resolve_api_key(TeacherConfig(backend="openai", base_url="http://localhost:1/v1",
                                         api_key_env="MIDDO_LOCAL_KEY")) == "token-1"


def test_make_teacher_openai_backend(tmp_path):
    cfg = TeacherConfig(backend="openai", base_url="http://127.0.0.1:9/v1", cache_path=str(tmp_path / "c.sqlite"))
    teacher = make_teacher(cfg)
    assert isinstance(teacher, OpenAITeacher) and teacher.usage()["requests"] == 0


def test_an_unknown_backend_names_the_available_ones_and_the_entry_point_group():
    with pytest.raises(ConfigError, match=r"not a known backend \(available: openai, local, sim\).*middo.teachers"):
        make_teacher(TeacherConfig(backend="nonesuch"))


def test_a_backend_registered_in_process_is_built_with_the_section(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_registered", {})  # registrations end with the test
    made = []

    def factory(cfg: TeacherConfig) -> OpenAITeacher:
        made.append(cfg.options)
        return OpenAITeacher(TeacherConfig(backend="openai", base_url="http://127.0.0.1:9/v1", cache_path=""))

    register_backend("recording", factory)
    with make_teacher(TeacherConfig(backend="recording", options={"depth": 3})) as teacher:
        assert isinstance(teacher, OpenAITeacher)
    assert made == [{"depth": 3}] and "recording" in available_backends()
    with pytest.raises(ConfigError, match="built in"):
        register_backend("openai", factory)


def test_the_demo_backend_comes_from_its_entry_point_and_checks_its_own_options():
    with pytest.raises(ConfigError, match="teacher.options.error_rate = 1.0"):
        make_teacher(TeacherConfig(backend="sim", options={"error_rate": 1.0}))
    with pytest.raises(ConfigError, match=r"unknown key teacher.options.colour; known keys: \['error_rate', 'seed'\]"):
        make_teacher(TeacherConfig(backend="sim", options={"colour": 0.1}))
    with make_teacher(TeacherConfig(backend="sim", options={"error_rate": 0.0})) as teacher:
        assert teacher.usage()["simulated"] is True
