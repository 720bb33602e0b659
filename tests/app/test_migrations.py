"""Migrations carry what they seed: from the project they may take column types, nothing else."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from sqlalchemy.types import TypeEngine

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))
PROJECT = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _project_names(tree: ast.Module) -> set[tuple[str, str]]:
    """(module, name) for every project name the file uses: `from m import n` and `m.n`."""
    used: set[tuple[str, str]] = set()
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in PROJECT:
                used |= {(node.module, alias.name) for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names if a.name.split(".")[0] in PROJECT}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if owner in imported:
                used.add((owner, node.attr))
    return used


def test_the_checker_sees_project_imports() -> None:
    tree = ast.parse("import core.db\nfrom dispatch.x import f\nT = core.db.UTCDateTime\n")
    assert _project_names(tree) == {("dispatch.x", "f"), ("core.db", "UTCDateTime")}


@pytest.mark.parametrize("path", VERSIONS, ids=[p.stem for p in VERSIONS])
def test_migration_takes_only_column_types_from_the_project(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for module, name in sorted(_project_names(tree)):
        value = getattr(importlib.import_module(module), name, None)
        is_type = isinstance(value, type) and issubclass(value, TypeEngine)
        assert is_type, f"{path.name} uses {module}.{name}, which is not a column type"
