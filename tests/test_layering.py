"""db/ is the bottom layer: it imports nothing from the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABOVE_DB = ("app", "callbacks", "layouts", "ingest", "wsgi")
# Alembic's own command line reads DATABASE_URL through the app's settings; the app and
# `p2pdash db upgrade` hand the connection in and never reach that line.
ENTRY_POINTS = {ROOT / "db" / "migrations" / "env.py"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_db_imports_nothing_from_the_layers_above_it():
    reaching_up = {}
    for path in sorted((ROOT / "db").rglob("*.py")):
        if path in ENTRY_POINTS:
            continue
        upward = {name for name in imported_modules(path)
                  if name.split(".")[0] in ABOVE_DB}
        if upward:
            reaching_up[str(path.relative_to(ROOT))] = sorted(upward)
    assert not reaching_up, f"db/ modules importing from above: {reaching_up}"
