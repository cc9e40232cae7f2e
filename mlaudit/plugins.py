"""Third-party plugins, found through entry points (docs/plugins.md).

- `mlaudit.rules`: each entry point names a `RulePack`: the plugin's code prefix, its rule
  metadata folder (YAML in the schema of mlaudit's own rules/) and the table of its check
  modules (module -> codes), registered with the same `@rule` decorator as built-in checks.
- `mlaudit.fixers`: entry point name = fixer name, value = the module that registers it with
  `@fixer`.
- `mlaudit.formats`: entry point name = output format name, value = the module holding its
  `render(report, out, **options)`.

Discovery reads the installed distributions' entry_points.txt once per process (straight from
the dist-info folders on sys.path, which spares every scan importlib.metadata's email import and
METADATA parsing; anything else on sys.path is left to importlib.metadata) and imports only each
rule pack's declaration; check, fixer and format modules are imported when used, like built-in
ones. Everything is checked for collisions: a plugin prefix never starts with `ML` (built-in
codes) nor overlaps another plugin's prefix (selectors match by prefix), and a fixer or format
name never shadows a built-in or another plugin. Set `MLAUDIT_NO_PLUGINS=1` to ignore plugins.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.model import RegistryError

RULES_GROUP = "mlaudit.rules"
FIXERS_GROUP = "mlaudit.fixers"
FORMATS_GROUP = "mlaudit.formats"
PREFIX_RE = re.compile(r"^[A-Z]{2,8}$")
MODULE_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
BUILTIN_PREFIX = "ML"


@dataclass(frozen=True)
class RulePack:
    """What a rules plugin declares; its `mlaudit.rules` entry point names an instance.

    `prefix`: the plugin's code prefix (codes are PREFIX + three digits, e.g. ACME001).
    `family`: one line describing the family, shown by `mlaudit rule` and in SARIF tags.
    `rules_dir`: folder of `*.yaml` rule metadata, same schema as mlaudit's `rules/`.
    `modules`: check module -> the codes it registers with `mlaudit.checks.registry.rule`.
    """

    prefix: str
    family: str
    rules_dir: Path
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # filled in at discovery: "<distribution> (<entry point>)"
    origin: str = ""


def enabled() -> bool:
    """False when MLAUDIT_NO_PLUGINS is set (a clean built-in run, e.g. to bisect a problem)."""
    return not os.environ.get("MLAUDIT_NO_PLUGINS")


def _entry_points(group: str) -> list:
    if not enabled():
        return []
    found = _scan_entry_points(group)
    if found is None:  # a place the quick scan does not read: the standard library decides
        from importlib.metadata import entry_points

        standard: list[Any] = list(entry_points(group=group))  # same fields as _EntryPoint
        found = standard
    return sorted(found, key=lambda ep: ep.name)


@dataclass(frozen=True)
class _Dist:
    name: str


@dataclass(frozen=True)
class _EntryPoint:
    """An entry point as importlib.metadata.EntryPoint presents it (name, value, group, dist,
    load), found by `_scan_entry_points`."""

    name: str
    value: str
    group: str
    dist: _Dist

    def load(self) -> object:
        """Import the module and follow the attribute path, as EntryPoint.load does."""
        import importlib

        match = _EP_VALUE_RE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj: object = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj


# importlib.metadata.EntryPoint.pattern
_EP_VALUE_RE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@functools.cache
def _dist_infos() -> tuple[tuple[str, str], ...] | None:
    """(metadata folder, text of its entry_points.txt) of every distribution on sys.path, in
    the order importlib.metadata finds them; None where that order or place is not plain
    folders (a zip or egg on sys.path, a finder of its own), left to importlib.metadata."""
    import sys
    from importlib.machinery import PathFinder

    # importlib.metadata asks every meta-path finder; only the standard PathFinder is read here
    if any(getattr(f, "find_distributions", None) is not None and f is not PathFinder for f in sys.meta_path):
        return None
    out: list[tuple[str, str]] = []
    for entry in sys.path:
        root = entry or "."
        if root.endswith(".egg") or os.path.isfile(root):
            return None
        try:
            names = os.listdir(root)
        except OSError:
            continue  # not there: importlib.metadata finds nothing in it either
        for name in names:
            if not name.lower().endswith((".dist-info", ".egg-info")):
                continue
            folder = os.path.join(root, name)
            try:
                with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as fh:
                    out.append((folder, fh.read()))
            except OSError:
                out.append((folder, ""))  # no entry points (or an egg-info file)
    return tuple(out)


def _dist_name(folder: str) -> str:
    """The distribution's Name from its METADATA (PKG-INFO) headers, as `dist.name` gives it."""
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, meta), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key.strip().lower() == "name":
                        return value.strip()
        except OSError:
            continue
    return "?"


def _scan_entry_points(group: str) -> list[_EntryPoint] | None:
    """The entry points of `group`, read straight from the entry_points.txt files of the
    distributions on sys.path (importlib.metadata parses every distribution's METADATA and
    imports the email package first: ~70 ms of every scan). Same rules as importlib.metadata:
    first distribution of a (normalized) name wins, `[group]` sections, `name = value` lines,
    blank and `#` lines skipped. None: not decidable here (see `_dist_infos`)."""
    infos = _dist_infos()
    if infos is None:
        return None
    found: list[_EntryPoint] = []
    seen: set[str] = set()
    for folder, text in infos:
        stem = os.path.splitext(os.path.basename(folder))[0]
        key = re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()
        if key in seen:
            continue
        seen.add(key)
        if group not in text:
            continue
        section = None
        dist: _Dist | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line.strip("[]")
                continue
            if section != group:
                continue
            name, _, value = line.partition("=")
            dist = dist or _Dist(_dist_name(folder))
            found.append(_EntryPoint(name.strip(), value.strip(), group, dist))
    return found


def _origin(ep: object) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or "?"
    return f"{name} ({getattr(ep, 'name', '?')})"


def _check_pack(pack: RulePack, taken: list[RulePack]) -> None:
    where = pack.origin
    if not PREFIX_RE.match(pack.prefix) or pack.prefix.startswith(BUILTIN_PREFIX):
        raise RegistryError(f"plugin {where}: prefix {pack.prefix!r} must be 2-8 capital letters, "
                            f"not starting with {BUILTIN_PREFIX!r} (reserved for mlaudit's own rules)")
    for other in taken:
        if pack.prefix.startswith(other.prefix) or other.prefix.startswith(pack.prefix):
            raise RegistryError(f"plugins {other.origin} and {where} use overlapping code prefixes "
                                f"{other.prefix!r} and {pack.prefix!r}")
    code_re = re.compile(rf"^{pack.prefix}\d{{3}}$")
    for module, codes in pack.modules.items():
        if not MODULE_RE.match(module) or module.split(".")[0] == "mlaudit":
            raise RegistryError(f"plugin {where}: {module!r} is not a module of the plugin")
        for code in codes:
            if not code_re.match(code):
                raise RegistryError(f"plugin {where}: code {code!r} does not carry its prefix "
                                    f"{pack.prefix!r} + three digits")
    if not Path(pack.rules_dir).is_dir():
        raise RegistryError(f"plugin {where}: rules folder {pack.rules_dir} not found")


@functools.cache
def rule_packs() -> tuple[RulePack, ...]:
    """Every installed rules plugin, validated (RegistryError names the offending plugin)."""
    packs: list[RulePack] = []
    for ep in _entry_points(RULES_GROUP):
        try:
            pack = ep.load()
        except Exception as err:  # a broken plugin: one line naming it, never a traceback
            raise RegistryError(f"plugin {_origin(ep)}: cannot load {ep.value}: "
                                f"{type(err).__name__}: {err}") from None
        if not isinstance(pack, RulePack):
            raise RegistryError(f"plugin {_origin(ep)}: {ep.value} is not an mlaudit.plugins.RulePack")
        pack = RulePack(pack.prefix, pack.family, Path(pack.rules_dir),
                        {m: tuple(c) for m, c in pack.modules.items()}, _origin(ep))
        _check_pack(pack, packs)
        packs.append(pack)
    return tuple(packs)


def _named_modules(group: str, what: str, builtin: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    origins: dict[str, str] = {}
    for ep in _entry_points(group):
        if ep.name in builtin:
            raise RegistryError(f"plugin {_origin(ep)}: {what} {ep.name!r} is built into mlaudit")
        if ep.name in found:
            raise RegistryError(f"plugins {origins[ep.name]} and {_origin(ep)} both add {what} {ep.name!r}")
        if not MODULE_RE.match(ep.value):
            raise RegistryError(f"plugin {_origin(ep)}: {what} {ep.name!r} must name a module, "
                                f"got {ep.value!r}")
        found[ep.name] = ep.value
        origins[ep.name] = _origin(ep)
    return found


def fixer_modules(builtin: Mapping[str, str]) -> dict[str, str]:
    """Plugin fixer name -> module (collisions with `builtin` or each other: RegistryError)."""
    return _named_modules(FIXERS_GROUP, "fixer", builtin)


def format_modules(builtin: Mapping[str, str]) -> dict[str, str]:
    """Plugin output format name -> module with `render` (collisions: RegistryError)."""
    return _named_modules(FORMATS_GROUP, "output format", builtin)
