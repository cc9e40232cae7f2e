"""Config keys a project's own code defines or reads, so that they are never "unknown".

A key the dialect's schema does not list may still be the project's own: a dataclass field
parsed by HfArgumentParser, an argparse option, or a `cfg.key` / `cfg["key"]` / `cfg.get("key")`
read. The code is read through its AST only; nothing is imported. The names are gathered by
the module's one index walk (`CodeIndex.config_names`), not by a walk of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlaudit.inputs.python_module import PythonModule


def names_in_code(modules: Iterable[PythonModule]) -> frozenset[str]:
    """Every name the code defines as a class field or option, or reads as a key/attribute."""
    out: set[str] = set()
    for module in modules:
        out |= module.index.config_names
    return frozenset(out)
