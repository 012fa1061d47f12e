"""Helpers for the pipeline tests: what a stage script really reads and imports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "src" / "middo"


def _imports(tree: ast.AST) -> dict[str, str]:
    """Names bound by `from middo.x import Name` anywhere in the tree -> `middo.x`."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                bound[alias.asname or alias.name] = node.module
    return bound


def script_sections(script: Path) -> set[tuple[type, str]]:
    """(config class, section) for each `section(Cls, params, "name")` call in a stage script."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    bound = _imports(tree)
    found = set()
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "section"
        if is_call and len(node.args) >= 3 and isinstance(node.args[0], ast.Name):
            name = node.args[2]
            assert isinstance(name, ast.Constant), f"{script}: section name must be a string literal"
            module = importlib.import_module(bound[node.args[0].id])
            found.add((getattr(module, node.args[0].id), name.value))
    return found


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "middo":
        return None
    base = LIBRARY.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def middo_packages(script: Path) -> set[str]:
    """Sub-packages (directories) of `middo` that a script imports, directly or through the library."""
    seen: set[Path] = set()
    todo = [script]
    packages = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                parts = module.split(".")
                if parts[0] == "middo" and len(parts) > 1 and (LIBRARY / parts[1]).is_dir():
                    packages.add(parts[1])
                target = _module_file(module)
                if target:
                    todo.append(target)
    return packages
