"""The project declares Python >= 3.10, where `tomllib` does not exist: every import of it
must sit under a `sys.version_info >= (3, 11)` test with `tomli` as the other branch."""

from __future__ import annotations

import ast
from pathlib import Path

from mlaudit.inputs.toml_text import parse_toml

PACKAGE = Path(__file__).resolve().parents[1] / "mlaudit"


def _guarded(tree: ast.AST) -> set[int]:
    """Line numbers of tomllib imports inside an `if sys.version_info >= (3, 11)` branch."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import):
                        lines.add(sub.lineno)
    return lines


def test_every_tomllib_import_has_a_tomli_fallback() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = _guarded(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
                if node.lineno not in guarded:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert offenders == []


def test_parse_toml_reads_documents_and_refuses_invalid_text() -> None:
    assert parse_toml('dependencies = ["numpy>=1.24"]') == {"dependencies": ["numpy>=1.24"]}
    assert parse_toml("dependencies = [") is None
