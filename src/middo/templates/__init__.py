"""Prompt template files shipped with middo: `refine.yaml` (teacher requests) and `judge.yaml` (rating requests)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from middo.errors import ConfigError


def load_template(path: str | Path | None, default: str, setting: str) -> tuple[dict[str, Any], str]:
    """(the YAML mapping, where it came from) of a user's template file, or of the packaged `default` when None.

    `setting` names the param that points at the file (e.g. `refine.prompts`), for error messages.
    """
    if path is None:
        resource = files(__package__) / default
        return yaml.safe_load(resource.read_text(encoding="utf-8")), f"middo/templates/{default}"
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{setting} = {str(path)!r}: no such file; copy middo/templates/{default} there and edit "
                          f"it, or set {setting}: null for the packaged prompts")
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} ({setting}): not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source} ({setting}): expected a mapping of names to texts, as in "
                          f"middo/templates/{default}")
    return loaded, str(source)


def require_texts(template: dict[str, Any], keys: tuple[str, ...], where: str) -> dict[str, str]:
    """`{key: text}` for each of `keys`; a missing or non-text entry is a ConfigError naming the file and key."""
    missing = [key for key in keys if not isinstance(template.get(key), str) or not template[key].strip()]
    if missing:
        raise ConfigError(f"{where}: missing or empty {', '.join(missing)}; each of {', '.join(keys)} needs a text")
    return {key: template[key].strip() for key in keys}
