"""Verification: bit-exact tensor equality for safe fixes, ONNX checker + parity for exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError

ALIASES_KEY = "mlaudit.aliases"  # safetensors metadata: JSON {dropped alias: kept name}


def bit_equal(a: Any, b: Any) -> bool:
    """Same dtype, shape and bytes (NaN payloads included; -0.0 != 0.0)."""
    import torch

    if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    a, b = a.detach().contiguous().reshape(-1), b.detach().contiguous().reshape(-1)
    if a.numel() == 0:
        return True
    return torch.equal(
        a.view(torch.uint8) if a.dtype != torch.bool else a,
        b.view(torch.uint8) if b.dtype != torch.bool else b,
    )


def read_state_file(path: Path) -> dict[str, Any]:
    """Tensors of a written artifact (safetensors aliases resolved, or torch weights-only)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            aliases = json.loads((fh.metadata() or {}).get(ALIASES_KEY, "{}"))
        for alias, kept in aliases.items():
            tensors[alias] = tensors[kept]
        return tensors
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return dict(obj)


def verify_bit_exact(
    written: Path, expected: dict[str, Any], origin: dict[str, str], source_tensors: dict[str, Any]
) -> str:
    """Every tensor in `written` equals its source tensor bit for bit; returns a summary line.

    `expected` is the pipeline's state dict (the names that must be there); `origin` maps each
    name back to its name in the input; `source_tensors` are the input's tensors, re-read."""
    got = read_state_file(written)
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    if missing or extra:
        raise FixError(
            f"verification failed: {written.name} is missing {missing[:3]} / has extra {extra[:3]}"
        )
    for name, tensor in got.items():
        src = source_tensors.get(origin.get(name, name))
        if src is None or not bit_equal(tensor, src):
            raise FixError(f"verification failed: tensor {name!r} differs from the input")
    return f"{len(got)} tensors bit-identical to the input"


def check_onnx(path: Path) -> None:
    """The ONNX checker (full check: shape inference too)."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:  # checker raises several error types
        raise FixError(f"ONNX checker rejected the export: {str(err).splitlines()[0]}") from None


def parity(ref: Any, got: Any, atol: float, rtol: float) -> tuple[bool, float]:
    """(within tolerance on every output, largest max abs error) of an export against PyTorch
    outputs (one array or a list of arrays, one per output)."""
    import numpy as np

    from mlaudit.fixers.metrics import as_outputs

    refs, gots = as_outputs(ref), as_outputs(got)
    if len(refs) != len(gots):
        return False, float("inf")
    ok, worst = True, 0.0
    for r, g in zip(refs, gots, strict=True):
        r = np.asarray(r, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if r.shape != g.shape:
            return False, float("inf")
        err = np.abs(r - g)
        ok = ok and bool((err <= atol + rtol * np.abs(r)).all())
        worst = max(worst, float(err.max()) if err.size else 0.0)
    return ok, worst
