"""Data flows one way: ``rag/`` imports neither ``knowledge/`` nor ``pipelines/``; ``knowledge/`` not ``pipelines/``."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level package of every absolute import (also inside functions and TYPE_CHECKING blocks), per file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(("package", "forbidden"), [("rag", {"knowledge", "pipelines"}), ("knowledge", {"pipelines"})])
def test_lower_layers_do_not_import_higher_ones(package, forbidden):
    imported = _imported_packages(package)
    assert "rag" in imported or package == "rag"  # the scan sees imports at all
    assert {name: sorted(files) for name, files in imported.items() if name in forbidden} == {}
