"""Absolute imports of a module with where they sit, for MLR107 (imports missing from the
declared dependencies): the top-level name, the line, and whether the import is guarded
(optional). Only statements are visited (never expressions), so this is a light pass next to
the code index's full walk.

Guarded means the code plans for the package being absent: inside `try:` with an
ImportError-like handler (or in that handler, as the fallback), under an `if` (TYPE_CHECKING,
availability or version checks), or in a function that checks availability itself
(`is_x_available()`, `find_spec`, `require_x`)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from mlaudit.inputs import input_kind

OPTIONAL_HANDLERS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
AVAILABILITY = re.compile(
    r"\bis_\w+_available\b|\bfind_spec\b|\brequire_\w+\b|\bimport_or_skip\b|\bimportorskip\b"
)


@dataclass(frozen=True)
class ImportSite:
    """`import top.x` / `from top.x import y` at `line`; `guarded` when it may be absent."""

    top: str
    line: int
    guarded: bool


def _catches_import_errors(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", "")
            if name in OPTIONAL_HANDLERS:
                return True
    return False


def _is_main_guard(test: ast.expr) -> bool:
    return isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"


def _checks_availability(func: ast.AST) -> bool:
    """Whether a function asks if a package is there before importing it."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if AVAILABILITY.search(name):
                return True
    return False


def import_sites(tree: ast.Module) -> tuple[ImportSite, ...]:
    """Every absolute import statement of the module, in source order."""
    out: list[ImportSite] = []
    checked: dict[int, bool] = {}  # id(function) -> it checks availability (asked lazily)

    def guarded_in(func: ast.AST | None, guarded: bool) -> bool:
        if guarded or func is None:
            return guarded
        if id(func) not in checked:
            checked[id(func)] = _checks_availability(func)
        return checked[id(func)]

    stack: list[tuple[list[ast.stmt], bool, ast.AST | None]] = [(tree.body, False, None)]
    while stack:
        body, guarded, func = stack.pop()
        for stmt in body:
            if isinstance(stmt, ast.Import):
                g = guarded_in(func, guarded)
                out += [ImportSite(a.name.split(".", 1)[0], stmt.lineno, g) for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                if not stmt.level and stmt.module:
                    top = stmt.module.split(".", 1)[0]
                    out.append(ImportSite(top, stmt.lineno, guarded_in(func, guarded)))
            elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
                optional = guarded or _catches_import_errors(stmt)  # type: ignore[arg-type]
                stack.append((stmt.body, optional, func))  # type: ignore[attr-defined]
                for handler in stmt.handlers:  # type: ignore[attr-defined]
                    stack.append((handler.body, optional, func))
                stack.append((stmt.orelse + stmt.finalbody, guarded, func))  # type: ignore[attr-defined]
            elif isinstance(stmt, ast.If):
                conditional = guarded or not _is_main_guard(stmt.test)
                stack.append((stmt.body, conditional, func))
                stack.append((stmt.orelse, conditional, func))
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.append((stmt.body, guarded, stmt))
            elif isinstance(stmt, (ast.ClassDef, ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
                stack.append((stmt.body, guarded, func))
                stack.append((getattr(stmt, "orelse", []), guarded, func))
    return tuple(sorted(out, key=lambda s: s.line))


@dataclass(frozen=True)
class ProjectImports:
    """The project (its dependency files) and every module's facts, for MLR107."""

    project: Any  # ProjectSnapshot
    modules: tuple[Any, ...]  # ModuleFacts


@input_kind("project_imports", scope="project")
def load_project_imports(session, _file) -> ProjectImports | None:
    """None when the scan target is a single file: there is no project to declare anything."""
    project = session.get("project")
    if project is None:
        return None
    setup = session.get("training_setup")
    return ProjectImports(project, setup.modules if setup is not None else ())
