"""Rule implementations register here under the code their YAML metadata uses.

Modules under `mlaudit.checks` are discovered by name, so adding a family is adding a
module: no central list to edit. Checks declare which input they need (`needs=`), and the
engine loads only those inputs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def _import_package(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package_name}.{info.name}")


def implementations() -> Mapping[str, RuleImpl]:
    """All registered implementations, after importing every check and input module."""
    _import_package("mlaudit.inputs")
    _import_package("mlaudit.checks")
    return dict(_IMPLS)
