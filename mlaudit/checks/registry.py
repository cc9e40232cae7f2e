"""Rule implementations register here under the code their YAML metadata uses.

`RULE_MODULES` lists, per check module, the codes it implements. The table is explicit (no
search over source text) so that a scan imports only the modules its selected rules need, and
so that a rule can never vanish silently: a catalog code missing from the table, a table code
missing from the catalog, a module that does not register a code its entry lists, or a
registration the table does not list, is a RegistryError (a one-line error, exit 2).
Checks declare which input they need (`needs=`), and the engine loads only those inputs.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlaudit.inputs import ensure_input_kind
from mlaudit.model import RegistryError
from mlaudit.plugins import rule_packs

if TYPE_CHECKING:
    from mlaudit.context import RuleContext
    from mlaudit.model import Finding

CheckFunc = Callable[[Any, "RuleContext"], Iterable["Finding"]]

RULE_MODULES: dict[str, tuple[str, ...]] = {
    "mlaudit.checks.security_files": (
        "MLS001", "MLS002", "MLS003", "MLS004", "MLS005", "MLS006", "MLS007", "MLS008",
    ),
    "mlaudit.checks.code_security": ("MLS101", "MLS102", "MLS103", "MLS104", "MLS105", "MLS106"),
    "mlaudit.checks.checkpoint_size": ("MLC001", "MLC002", "MLC003", "MLC004", "MLC005"),
    "mlaudit.checks.checkpoint_memory": ("MLC006",),
    "mlaudit.checks.checkpoint_precision": ("MLC007", "MLC008", "MLC009", "MLC010"),
    "mlaudit.checks.weight_health": ("MLC011", "MLC012", "MLC013", "MLC014", "MLC015", "MLC016"),
    "mlaudit.checks.flops_energy": ("MLC020",),
    "mlaudit.checks.gradient_health": (
        "MLG001", "MLG002", "MLG003", "MLG004", "MLG005", "MLG006",
        "MLG010", "MLG011", "MLG012", "MLG013", "MLG014",
    ),
    "mlaudit.checks.config_hygiene": (
        "MLT001", "MLT002", "MLT003", "MLT004", "MLT005", "MLT006", "MLT007", "MLT008",
        "MLT009", "MLT010", "MLT011", "MLT013",
    ),
    "mlaudit.checks.config_values": (
        "MLT014", "MLT015", "MLT016", "MLT017", "MLT018", "MLT019", "MLT020", "MLT021", "MLR004",
        "MLR005", "MLR006", "MLR007",
    ),
    "mlaudit.checks.config_schedule": ("MLT022", "MLT023", "MLT024"),
    "mlaudit.checks.config_checkpoint": ("MLT012",),
    "mlaudit.checks.reproducibility": ("MLR001", "MLR002", "MLR003", "MLR010", "MLR011"),
    "mlaudit.checks.dependencies": ("MLR101", "MLR102", "MLR103", "MLR104", "MLR105"),
    "mlaudit.checks.imports_declared": ("MLR107",),
    "mlaudit.checks.docs": ("MLK001", "MLK002", "MLK003", "MLK004"),
    "mlaudit.checks.tests_ci": ("MLX001", "MLX002", "MLX003", "MLX004"),
    "mlaudit.checks.versioning": ("MLV001", "MLV002", "MLV003", "MLV004", "MLV005"),
    "mlaudit.checks.code_smells": ("MLQ001", "MLQ002", "MLQ003", "MLQ004", "MLQ005", "MLQ006"),
    "mlaudit.checks.code_outputs": ("MLQ007",),
    "mlaudit.checks.model_selection": ("MLQ008",),
    "mlaudit.checks.run_history": (
        "MLH001", "MLH002", "MLH003", "MLH004", "MLH005", "MLH006", "MLH007", "MLH008", "MLH009",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class RuleImpl:
    """A registered check: its rule code, the input kind it reads, and the function."""

    code: str
    needs: str
    func: CheckFunc


_IMPLS: dict[str, RuleImpl] = {}


@functools.cache
def code_modules() -> dict[str, str]:
    """Code -> implementing module: RULE_MODULES plus every rules plugin's table."""
    index: dict[str, str] = {}
    tables = [RULE_MODULES, *(pack.modules for pack in rule_packs())]
    for table in tables:
        for module, codes in table.items():
            for code in codes:
                if code in index:
                    raise RegistryError(f"{code} is listed for {index[code]} and {module}")
                index[code] = module
    return index


def rule(code: str, *, needs: str) -> Callable[[CheckFunc], CheckFunc]:
    """Register `func(target, ctx) -> Iterable[Finding]` as the implementation of `code`."""

    def register(func: CheckFunc) -> CheckFunc:
        expected = code_modules().get(code)
        if expected != func.__module__:
            raise RegistryError(
                f"{code} is implemented in {func.__module__}, but the rule table lists "
                f"{expected or 'no module'} for it"
            )
        if code in _IMPLS and _IMPLS[code].func is not func:
            raise RegistryError(f"{code} is implemented twice ({_IMPLS[code].func.__qualname__})")
        _IMPLS[code] = RuleImpl(code=code, needs=needs, func=func)
        return func

    return register


def check_table(catalog_codes: Collection[str], engine_codes: Collection[str]) -> None:
    """Raise RegistryError unless every catalog code has exactly one implementation source:
    a table entry, or the engine itself (`engine_codes`). Cheap: imports nothing."""
    implemented = set(code_modules()) | set(engine_codes)
    missing = sorted(set(catalog_codes) - implemented)
    if missing:
        raise RegistryError(f"rule {missing[0]} is in the catalog but no check implements it "
                            f"(mlaudit.checks.registry.RULE_MODULES)")
    extra = sorted(set(code_modules()) - set(catalog_codes))
    if extra:
        raise RegistryError(f"rule {extra[0]} is implemented in {code_modules()[extra[0]]} "
                            f"but has no entry in the rule catalog (rules/*.yaml)")


def implementations(codes: Iterable[str] | None = None) -> Mapping[str, RuleImpl]:
    """Registered implementations. With `codes`, only the modules implementing those codes
    (and the readers they need) are imported; without, every check module is. Codes the
    table does not list (the engine's own meta codes) are left out of the result."""
    table = code_modules()
    wanted = list(table) if codes is None else list(codes)
    for module in sorted({table[c] for c in wanted if c in table and c not in _IMPLS}):
        try:
            importlib.import_module(module)
        except ImportError as err:  # a plugin's table naming a module that is not there
            raise RegistryError(f"cannot import check module {module}: {err}") from None
    unregistered = [c for c in wanted if c in table and c not in _IMPLS]
    if unregistered:
        code = unregistered[0]
        raise RegistryError(f"{table[code]} does not register rule {code} "
                            f"(listed for it in its rule table)")
    found = {c: _IMPLS[c] for c in wanted if c in _IMPLS}
    for impl in found.values():
        ensure_input_kind(impl.needs)
    return found
