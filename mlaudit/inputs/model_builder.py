"""Build the project's model from a training config — running project code, so only when the
user allowed it (`--run-model` or `allow-code: true`). Never called by default.

Public API:
- `build_model(cfg, allow_code) -> torch.nn.Module` (raises ModelBuildError)
- `example_inputs(cfg, batch=2, **dims) -> tuple[torch.Tensor, ...]` from `cfg.input_spec`
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

from mlaudit.inputs.training_config import TrainingConfig


class ModelBuildError(Exception):
    """The model class could not be imported or constructed; one-line message."""


def _import_target(target: str, search_root: str | None) -> Any:
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ModelBuildError(f"model target {target!r} is not an import path like pkg.module:Class")
    added = False
    if search_root and search_root not in sys.path:
        sys.path.insert(0, search_root)  # the project's own modules, as its training script sees them
        added = True
    try:
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError) as err:
        raise ModelBuildError(f"cannot import {target!r}: {err}") from None
    finally:
        if added and search_root is not None:
            sys.path.remove(search_root)


def build_model(cfg: TrainingConfig, allow_code: bool, search_root: str | None = None) -> Any:
    """Instantiate `cfg.model_target(**cfg.model_kwargs)` in eval mode on the CPU."""
    if not allow_code:
        raise ModelBuildError("running project code is not allowed (use --run-model)")
    if not cfg.model_target:
        raise ModelBuildError(f"{cfg.rel}: the config names no model class (_target_)")
    cls = _import_target(cfg.model_target, search_root or str(cfg.path.parent))
    try:
        model = cls(**dict(cfg.model_kwargs))
    except Exception as err:  # arbitrary project code: report, do not crash
        raise ModelBuildError(f"{cfg.model_target}(**kwargs) failed: {type(err).__name__}: {err}") from None
    return model.eval()


def example_inputs(cfg: TrainingConfig, batch: int = 2, **dims: int) -> tuple[Any, ...]:
    """Synthetic inputs from the config's input spec; named dims (e.g. `seq=32`) override
    entries of the spec's shape given as strings (`shape: [seq, 64]`)."""
    import torch

    if not cfg.input_spec:
        raise ModelBuildError(f"{cfg.rel}: the config has no input_spec")
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for spec in cfg.input_spec:
        if not isinstance(spec, Mapping) or "shape" not in spec:
            raise ModelBuildError(f"{cfg.rel}: input_spec entries need a shape")
        shape = [batch]
        for d in spec["shape"]:
            shape.append(int(dims.get(d, spec.get("dims", {}).get(d, 8))) if isinstance(d, str) else int(d))
        dtype = getattr(torch, str(spec.get("dtype", "float32")))
        if dtype.is_floating_point:
            tensors.append(torch.randn(*shape, generator=gen, dtype=dtype))
        else:
            low, high = int(spec.get("low", 0)), int(spec.get("high", 2))
            tensors.append(torch.randint(low, high, shape, generator=gen, dtype=dtype))
    return tuple(tensors)
