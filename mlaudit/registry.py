"""Rule implementations register here under the code their YAML metadata uses.

Modules under `mlaudit.checks` are discovered by name, so adding a family is adding a
module: no central list to edit. Checks declare which input they need (`needs=`), and the
engine loads only those inputs.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlaudit.context import RuleContext
    from mlaudit.model import Finding

CheckFunc = Callable[[Any, "RuleContext"], Iterable["Finding"]]


@dataclass(frozen=True)
class RuleImpl:
    """A registered check: its rule code, the input kind it reads, and the function."""

    code: str
    needs: str
    func: CheckFunc


_IMPLS: dict[str, RuleImpl] = {}


def rule(code: str, *, needs: str) -> Callable[[CheckFunc], CheckFunc]:
    """Register `func(target, ctx) -> Iterable[Finding]` as the implementation of `code`."""

    def register(func: CheckFunc) -> CheckFunc:
        if code in _IMPLS and _IMPLS[code].func is not func:
            raise RuntimeError(f"{code} is implemented twice ({_IMPLS[code].func.__qualname__})")
        _IMPLS[code] = RuleImpl(code=code, needs=needs, func=func)
        return func

    return register


_RULE_DECL = re.compile(r"""@rule\(\s*["'](ML[A-Z]\d{3})["']""")
_KIND_DECL = re.compile(r"""@input_kind\(\s*["']([\w-]+)["']""")


def _modules(package_name: str) -> list[tuple[str, Path]]:
    package = importlib.import_module(package_name)
    return [
        (f"{package_name}.{info.name}", Path(package.__path__[0]) / f"{info.name}.py")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and not info.ispkg
    ]


@functools.cache
def _declarations(package_name: str, pattern: re.Pattern[str]) -> dict[str, str]:
    """Which module declares which code (or input kind), read from the source text.

    Reading a dozen small files costs well under a millisecond; importing every check and
    reader module costs tens, so a scan imports only the modules its selected rules need.
    Registration itself still happens at import, by the decorators.
    """
    index: dict[str, str] = {}
    for module, path in _modules(package_name):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:  # e.g. a zipped install: fall back to importing everything
            return {}
        for name in pattern.findall(text):
            index.setdefault(name, module)
    return index


def _import_all(package_name: str) -> None:
    for module, _ in _modules(package_name):
        importlib.import_module(module)


def ensure_input_kind(kind: str) -> None:
    """Import the reader module that registers input kind `kind`, if not loaded yet."""
    from mlaudit.inputs import INPUT_KINDS

    if kind in INPUT_KINDS:
        return
    module = _declarations("mlaudit.inputs", _KIND_DECL).get(kind)
    if module:
        importlib.import_module(module)
    if kind not in INPUT_KINDS:  # declared in an unexpected way: import every reader
        _import_all("mlaudit.inputs")


def implementations(codes: Iterable[str] | None = None) -> Mapping[str, RuleImpl]:
    """Registered implementations. With `codes`, only the modules implementing those codes
    (and the readers they need) are imported; without, every check module is."""
    if codes is None:
        _import_all("mlaudit.inputs")
        _import_all("mlaudit.checks")
        return dict(_IMPLS)
    index = _declarations("mlaudit.checks", _RULE_DECL)
    wanted = [c for c in codes if c not in _IMPLS]
    if any(c not in index for c in wanted) and not index:
        _import_all("mlaudit.checks")
    for module in sorted({index[c] for c in wanted if c in index}):
        importlib.import_module(module)
    found = {c: _IMPLS[c] for c in codes if c in _IMPLS}
    for impl in found.values():
        ensure_input_kind(impl.needs)
    return found
