"""The parsed-Python record shared by the .py reader (`python_code`) and the notebook reader
(`notebook`); it lives apart so that neither reader imports the other's module to get it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mlaudit.inputs.code_index import CodeIndex, build_index


@dataclass(frozen=True)
class PythonModule:
    """One parsed Python file."""

    path: Path
    rel: str
    tree: ast.Module
    text: str
    kind: str = "python"  # python | test (as the repo walker classified the file)
    # `text` is the file's bytes decoded as UTF-8 (less a BOM): what any other UTF-8 reader of
    # the file sees, so a substring or pattern absent here is absent for them too
    utf8: bool = False

    @property
    def module_name(self) -> str:
        """Dotted import name relative to the scan root (`pkg/mod.py` -> `pkg.mod`)."""
        name = self.rel[:-3] if self.rel.endswith(".py") else self.rel
        return name.replace("/", ".").removesuffix(".__init__")

    @cached_property
    def index(self) -> CodeIndex:
        """The module's code index, built by one walk on first use and shared by all rules."""
        return build_index(self.tree)
