"""Checkpoint fixers: a frozen config dataclass + a handler per fix, registered by name.

Each fixer declares its applicability: `safe` (numerically lossless, verified tensor-by-tensor
bit-exact) or `unsafe` (changes numbers; needs `--unsafe-fixes` or an explicit `--apply`) and
the level it works on: `state` (the tensors of a checkpoint) or `model` (needs an architecture:
the config's model class, a TorchScript / torch.export file, or an ONNX file).

The pipeline order is fixed (ORDER): state cleanup first, then pruning and casts, then the
on-disk format, then ONNX export and int8 quantization of the exported graph.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlaudit import plugins
from mlaudit.model import RegistryError

# fixer name -> the module that registers it, in pipeline order (explicit: a fixer can never
# vanish silently; a module that does not register what is listed here is a RegistryError).
FIXER_MODULES: dict[str, str] = {
    "strip-optimizer": "mlaudit.fixers.strip_optimizer",
    "strip-prefix": "mlaudit.fixers.strip_prefix",
    "dedupe": "mlaudit.fixers.dedupe",
    "prune": "mlaudit.fixers.prune",
    "cast-bf16": "mlaudit.fixers.cast",
    "cast-fp16": "mlaudit.fixers.cast",
    "safetensors": "mlaudit.fixers.safetensors_fix",
    "onnx": "mlaudit.fixers.onnx_export",
    "int8": "mlaudit.fixers.int8",
    "int8-static": "mlaudit.fixers.int8",
}
ORDER = tuple(FIXER_MODULES)  # built-in fixers; plugins' join in all_fixers()


class FixError(Exception):
    """A fix could not be planned or applied: one-line message, exit 2."""


@dataclass(frozen=True)
class FixerSpec:
    """A registered fixer."""

    name: str
    applicability: str  # safe | unsafe
    level: str  # state | model
    effect: str  # expected effect, shown in the plan
    config_cls: type
    handler: Callable[..., Any]


FIXERS: dict[str, FixerSpec] = {}


def fixer(name: str, applicability: str, level: str, effect: str, config_cls: type) -> Callable:
    """Register `handler(state, config) -> StepResult` under `name`."""

    def deco(handler: Callable) -> Callable:
        listed = fixer_modules().get(name)
        if listed != handler.__module__:
            raise RegistryError(f"fixer {name!r} registered by {handler.__module__}, but the fixer "
                                f"table lists {listed or 'no module'} for it")
        FIXERS[name] = FixerSpec(name, applicability, level, effect, config_cls, handler)
        return handler

    return deco


@functools.cache
def fixer_modules() -> dict[str, str]:
    """Fixer name -> module: the built-in table, then plugins' (`mlaudit.fixers` entry points)."""
    return {**FIXER_MODULES, **plugins.fixer_modules(FIXER_MODULES)}


def all_fixers() -> dict[str, FixerSpec]:
    """Every fixer, in pipeline order (imports the fixer modules on first use). Plugin fixers
    run after the built-in state cleanup, before the on-disk format (state level), or last
    (model level)."""
    for name, module in fixer_modules().items():
        if name not in FIXERS:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise RegistryError(f"cannot import fixer module {module}: {err}") from None
            if name not in FIXERS:
                raise RegistryError(f"{module} does not register fixer {name!r} (listed in the fixer table)")
    extra = [n for n in fixer_modules() if n not in FIXER_MODULES]
    state = [n for n in extra if FIXERS[n].level == "state"]
    cut = ORDER.index("safetensors")
    order = [*ORDER[:cut], *state, *ORDER[cut:], *(n for n in extra if n not in state)]
    return {n: FIXERS[n] for n in order}


def parse_fix_arg(text: str) -> tuple[str, dict[str, str]]:
    """`prune:mode=unstructured:sparsity=0.5` -> ("prune", {"mode": ..., "sparsity": ...})."""
    name, *opts = [p.strip() for p in text.split(":")]
    options = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            raise FixError(f"fix option {opt!r} of {name!r} must look like key=value")
        options[key.strip().replace("-", "_")] = value.strip()
    return name, options


def make_config(spec: FixerSpec, options: dict[str, str]) -> Any:
    """The fixer's frozen config with `options` coerced to the declared field types."""
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    values: dict[str, Any] = {}
    for key, raw in options.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise FixError(f"fix {spec.name!r} has no option {key!r} (options: {known})")
        default = fields[key].default
        try:
            if isinstance(default, bool):
                values[key] = raw.lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                values[key] = type(default)(raw)
            else:
                values[key] = raw
        except ValueError:
            raise FixError(
                f"fix {spec.name!r}: option {key}={raw!r} is not a {type(default).__name__}"
            ) from None
    return spec.config_cls(**values)
