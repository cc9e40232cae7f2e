"""The optional `[fix]` extra: which packages it adds and how to tell a user to install it.

The core install is the scanner (numpy, no torch). `mlaudit fix`, `--run-model` and the few
statistics that only torch can compute (quantized and sparse tensors) need the extra; they
say so in one line instead of failing on an ImportError.
"""

from __future__ import annotations

import importlib.util

FIX_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "matplotlib")
FIX_INSTALL = "pip install 'mlaudit[fix]'"


def missing(packages: tuple[str, ...] = FIX_PACKAGES) -> list[str]:
    """The packages among `packages` that cannot be imported (found without importing them)."""
    out = []
    for name in packages:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def need_line(what: str, packages: tuple[str, ...] = FIX_PACKAGES) -> str | None:
    """One line saying what to install for `what`, or None when nothing is missing."""
    absent = missing(packages)
    if not absent:
        return None
    return f"{what} needs {', '.join(absent)} (the [fix] extra): {FIX_INSTALL}"
