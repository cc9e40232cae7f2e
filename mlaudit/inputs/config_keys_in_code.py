"""Config keys a project's own code defines or reads, so that they are never "unknown".

A key the dialect's schema does not list may still be the project's own: a dataclass field
parsed by HfArgumentParser, an argparse option, or a `cfg.key` / `cfg["key"]` / `cfg.get("key")`
read. The code is read through its AST only; nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from mlaudit.inputs.python_module import PythonModule


def _const_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def names_in_code(modules: Iterable[PythonModule]) -> frozenset[str]:
    """Every name the code defines as a class field or option, or reads as a key/attribute."""
    out: set[str] = set()
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                out.update(s.target.id for s in node.body
                           if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name))
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "add_argument":
                    for arg in node.args:
                        text = _const_str(arg)
                        if text and text.startswith("-"):
                            out.add(text.lstrip("-").replace("-", "_"))
                    out.update(v for kw in node.keywords if kw.arg == "dest" and (v := _const_str(kw.value)))
                elif name in ("get", "pop", "setdefault", "select") and node.args:
                    text = _const_str(node.args[0])
                    if text:
                        out.update(text.split("."))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                out.add(node.attr)
            elif isinstance(node, ast.Subscript):
                text = _const_str(node.slice)
                if text:
                    out.add(text)
    return frozenset(out)
