"""The shape of the `middo` CLI: command modules stand alone, every command is listed, errors are one line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import middo.cli
from middo.cli.main import app

CLI_DIR = Path(middo.cli.__file__).parent
COMMANDS = ["ingest", "export", "stats", "unroll", "init", "diff", "report", "demo", "model"]


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules (and `from` members) that the file at PATH imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(filter(None, ["middo.cli" if node.level else "", node.module or ""]))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_command_modules_do_not_import_main():
    modules = {path.name: _imported_modules(path) for path in CLI_DIR.glob("*.py")}
    assert {"main.py", "data.py", "report.py"} <= modules.keys()
    assert [name for name, imported in modules.items() if name != "main.py" and "middo.cli.main" in imported] == []


def _listed(args: list[str]) -> set[str]:
    """First words of the help lines of `middo ARGS --help` (command names among them)."""
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return {line.strip("│ ").split()[0] for line in result.output.splitlines() if line.strip("│ ")}


def test_help_lists_every_command():
    assert set(COMMANDS) <= _listed([])
    assert {"init", "convert-gguf"} <= _listed(["model"])
    assert "generate" in _listed(["demo"])


def _assert_one_error_line(stderr: str, missing: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0], stderr
    assert "Traceback" not in stderr


def test_middo_error_is_one_line_and_exit_code_1(tmp_path):
    missing = tmp_path / "missing.parquet"
    result = CliRunner().invoke(app, ["diff", str(missing), str(missing)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    _assert_one_error_line(result.stderr, missing)
    assert result.stdout == ""


def test_console_entry_point_reports_the_same_one_line(tmp_path):
    missing = tmp_path / "missing.parquet"
    command = [sys.executable, "-m", "middo.cli.main", "diff", str(missing), str(missing)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, missing)
