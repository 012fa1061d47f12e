"""params.yaml sections -> frozen dataclasses, with errors that say how to fix the value."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from middo.errors import ConfigError

T = TypeVar("T")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read a params.yaml file into a dict of sections."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found; run `middo init` or pass --params PATH")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return loaded


def section(cls: type[T], params: dict[str, Any], name: str) -> T:
    """Build `cls` from `params[name]`; unknown keys and wrong types raise ConfigError naming the key."""
    values = params.get(name) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"params.yaml: section {name!r} must be a mapping of keys to values")
    return from_dict(cls, values, where=name)


def from_dict(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Build a dataclass from a dict, checking keys and simple types."""
    fields = {field.name: field for field in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {where}.{close[0]}?" if close else f"; known keys: {sorted(fields)}"
            raise ConfigError(f"params.yaml: unknown key {where}.{key}{hint}")
    missing = [name for name, field in fields.items() if name not in values and _required(field)]
    if missing:
        doc = field_docs(cls).get(missing[0], "")
        raise ConfigError(f"params.yaml: {where}.{missing[0]} is required and not set" + (f": {doc}" if doc else ""))
    kwargs = {key: _coerce(value, hints[key], f"{where}.{key}") for key, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"params.yaml: section {where!r}: {exc}") from exc


def param_keys(cls: type, name: str) -> list[str]:
    """The dotted params.yaml keys a dataclass reads (for a stage's `params:` list in dvc.yaml)."""
    return [f"{name}.{field.name}" for field in dataclasses.fields(cls)]


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal after each field), first line only."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if is_field and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                return from_dict(arg, value, where=key)  # its own errors name the nested key
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"params.yaml: {key} = {value!r} must be one of {[_name(a) for a in args]}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"params.yaml: {key} = {value!r}; choose one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"params.yaml: {key} must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(item, inner, key) for item in value]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"params.yaml: {key} must be a mapping of keys to values (or null), got {value!r}")
        return from_dict(hint, value, where=key)
    if (origin is dict or hint is dict) and not isinstance(value, dict):
        raise ConfigError(f"params.yaml: {key} must be a mapping of names to values, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"params.yaml: {key} = {value!r} must be true or false")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"params.yaml: {key} = {value!r} must be a whole number")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"params.yaml: {key} = {value!r} must be a number")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"params.yaml: {key} = {value!r} must be a string (quote it in YAML)")
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition`; for use in `__post_init__`."""
    if not condition:
        raise ConfigError(message)
