"""Checkpoint fixers: a frozen config dataclass + a handler per fix, registered by name.

Each fixer declares its applicability: `safe` (numerically lossless, verified tensor-by-tensor
bit-exact) or `unsafe` (changes numbers; needs `--unsafe-fixes` or an explicit `--apply`) and
the level it works on: `state` (the tensors of a checkpoint) or `model` (needs an architecture:
the config's model class, a TorchScript / torch.export file, or an ONNX file).

Fixers declare their dependencies instead of a place in a global list: `requires` (fixers
that must run first and are added to a plan when missing: int8 requires onnx) and `after`
(fixers that run first when both are planned: safetensors after every state cleanup). The
pipeline order is a topological sort of those edges, ties broken by the fixer table's order,
so built-in fixers run as: state cleanup, pruning and casts, the on-disk format, then ONNX
export and int8 quantization of the exported graph. A plugin's state-level fixer runs before
the on-disk format, a model-level one after the built-ins.
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
ORDER = tuple(FIXER_MODULES)  # built-in fixers' tie-break order; plugins' join in all_fixers()
FORMAT_FIXERS = ("safetensors",)  # write the state file: every other state-level fixer runs first


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
    requires: tuple[str, ...] = ()  # run first; added to a plan that lacks them
    after: tuple[str, ...] = ()  # run first when both are planned
    conflicts: tuple[str, ...] = ()  # never in one plan with these


FIXERS: dict[str, FixerSpec] = {}


def fixer(
    name: str,
    applicability: str,
    level: str,
    effect: str,
    config_cls: type,
    *,
    requires: tuple[str, ...] = (),
    after: tuple[str, ...] = (),
    conflicts: tuple[str, ...] = (),
) -> Callable:
    """Register `handler(state, config) -> StepResult` under `name`, with the fixers it
    `requires`, runs `after` and `conflicts` with (see the module docstring)."""

    def deco(handler: Callable) -> Callable:
        listed = fixer_modules().get(name)
        if listed != handler.__module__:
            raise RegistryError(f"fixer {name!r} registered by {handler.__module__}, but the fixer "
                                f"table lists {listed or 'no module'} for it")
        FIXERS[name] = FixerSpec(name, applicability, level, effect, config_cls, handler,
                                 tuple(requires), tuple(after), tuple(conflicts))
        return handler

    return deco


@functools.cache
def fixer_modules() -> dict[str, str]:
    """Fixer name -> module: the built-in table, then plugins' (`mlaudit.fixers` entry points)."""
    return {**FIXER_MODULES, **plugins.fixer_modules(FIXER_MODULES)}


def all_fixers() -> dict[str, FixerSpec]:
    """Every fixer, in pipeline order (imports the fixer modules on first use)."""
    for name, module in fixer_modules().items():
        if name not in FIXERS:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise RegistryError(f"cannot import fixer module {module}: {err}") from None
            if name not in FIXERS:
                raise RegistryError(f"{module} does not register fixer {name!r} (listed in the fixer table)")
    specs = {n: FIXERS[n] for n in fixer_modules()}
    return {n: specs[n] for n in pipeline_order(specs)}


def _edges(specs: dict[str, FixerSpec]) -> dict[str, set[str]]:
    """name -> the fixers that must run before it: declared `requires` and `after`, the
    format fixers after every other state-level fixer, plugins' model-level fixers after
    every built-in one."""
    before: dict[str, set[str]] = {n: set(s.requires) | set(s.after) for n, s in specs.items()}
    for name, spec in specs.items():
        unknown = before[name] - set(specs)
        if unknown:
            raise RegistryError(f"fixer {name!r} depends on unknown fixer(s) {', '.join(sorted(unknown))}")
        if spec.level == "state" and name not in FORMAT_FIXERS:
            for fmt in FORMAT_FIXERS:
                if fmt in specs:
                    before[fmt].add(name)
        if name not in FIXER_MODULES and spec.level == "model":
            before[name] |= {n for n in specs if n in FIXER_MODULES}
    return before


def pipeline_order(specs: dict[str, FixerSpec]) -> list[str]:
    """Topological order of `specs` by their dependencies, ties broken by the fixer table's
    order (built-ins first, then plugins by name). A cycle is a RegistryError."""
    before = _edges(specs)
    rank = {n: (0, ORDER.index(n), n) if n in ORDER else (1, 0, n) for n in specs}
    done: list[str] = []
    left = set(specs)
    while left:
        ready = [n for n in left if not (before[n] & left)]
        if not ready:
            raise RegistryError(f"fixer dependencies form a cycle among {', '.join(sorted(left))}")
        first = min(ready, key=rank.__getitem__)
        done.append(first)
        left.remove(first)
    return done


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
