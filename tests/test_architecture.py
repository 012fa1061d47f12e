"""The core knows only real backends: no library module outside `middo.demo` imports the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "src" / "middo"
MAY_IMPORT_DEMO = {LIBRARY / "cli" / "demo.py"}
"""The `middo demo` command runs the demo, so it may import it."""


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a Python file imports (`import a.b`, `from a.b import c` gives a.b and a.b.c)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_no_library_module_outside_the_demo_imports_it():
    offenders = []
    for path in sorted(LIBRARY.rglob("*.py")):
        if path.is_relative_to(LIBRARY / "demo") or path in MAY_IMPORT_DEMO:
            continue
        demo = sorted(m for m in imported_modules(path) if m == "middo.demo" or m.startswith("middo.demo."))
        if demo:
            offenders.append(f"{path.relative_to(REPO)}: {demo}")
    assert not offenders, "upward imports of the demo:\n" + "\n".join(offenders)


def test_the_walk_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from middo.demo.sim_teacher import make_sim_teacher\n", encoding="utf-8")
    assert "middo.demo.sim_teacher" in imported_modules(module)


def test_judge_and_refine_code_deps_leave_the_demo_out():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    judge_deps = stages["judge-1"]["deps"]
    assert not any(dep.startswith(("src/middo/demo", "src/middo/refine")) for dep in judge_deps), judge_deps
    assert "src/middo/demo" not in stages["refine-1"]["deps"]
