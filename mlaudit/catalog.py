"""Rule metadata: loads rules/*.yaml, the one place where rule documentation lives."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlaudit.fsutil import atomic_write_text
from mlaudit.model import FixSpec, ParamSpec, RuleMeta, Severity
from mlaudit.params import PARAM_TYPES, attribute_name, coerce
from mlaudit.plugins import RulePack, rule_packs

CODE_RE = re.compile(r"^ML[A-Z]\d{3}$")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

FAMILIES: Mapping[str, str] = {
    "MLS": "security and supply chain",
    "MLC": "checkpoint: size, memory, precision, weight health",
    "MLG": "gradient health",
    "MLT": "training-config hygiene",
    "MLR": "reproducibility",
    "MLK": "docs and model cards",
    "MLX": "tests and CI",
    "MLV": "versioning and artifacts",
    "MLQ": "ML code smells",
    "MLH": "training-run history",
    "MLA": "meta: suppressions, baselines, inconclusive scans",
}


class CatalogError(Exception):
    """A rules/*.yaml file is malformed; a bug in mlaudit itself, not in user input."""


def rules_dir() -> Path:
    """Locate rules/: the top-level folder in a checkout, or the copy shipped in the wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "rules", package / "_rules"):
        if candidate.is_dir():
            return candidate
    raise CatalogError(f"rule metadata folder not found next to {package}")


def _param(code: str, name: str, raw: Any) -> ParamSpec:
    if not isinstance(raw, dict) or "default" not in raw or "type" not in raw:
        raise CatalogError(f"{code}: param {name!r} needs 'type' and 'default'")
    if raw["type"] not in PARAM_TYPES:
        raise CatalogError(f"{code}: param {name!r} has unknown type {raw['type']!r}")
    if not attribute_name(name).isidentifier():
        raise CatalogError(f"{code}: param {name!r} is no valid name (letters, digits, '-')")
    spec = ParamSpec(name=name, type=raw["type"], default=raw["default"], doc=raw.get("doc", ""))
    try:
        coerce(spec, spec.default)  # defaults are validated once, here
    except ValueError as err:
        raise CatalogError(f"{code}: default of param {err}") from None
    return spec


def _rule(raw: Mapping[str, Any], source: Path, pack: RulePack | None = None) -> RuleMeta:
    code = str(raw.get("code", ""))
    if pack is not None:
        if not re.match(rf"^{pack.prefix}\d{{3}}$", code):
            raise CatalogError(f"plugin {pack.origin}: {source.name}: rule code {code!r} does not "
                               f"carry the plugin's prefix {pack.prefix!r} + three digits")
    elif not CODE_RE.match(code):
        raise CatalogError(f"{source.name}: bad rule code {code!r}")
    elif code[:3] not in FAMILIES:
        raise CatalogError(f"{source.name}: {code} is in no known family")
    name = raw.get("name", "")
    if not NAME_RE.match(str(name)):
        raise CatalogError(f"{source.name}: {code} needs a kebab-case name, got {name!r}")
    fix = raw.get("fix")
    return RuleMeta(
        code=code,
        name=name,
        family=pack.prefix if pack else code[:3],
        summary=str(raw.get("summary", "")).strip(),
        severity=Severity.parse(str(raw.get("severity", "warning"))),
        status=str(raw.get("status", "stable")),
        what=str(raw.get("what", "")).strip(),
        why=str(raw.get("why", "")).strip(),
        example=str(raw.get("example", "")).rstrip(),
        instead=str(raw.get("instead", "")).rstrip(),
        params={k: _param(code, k, v) for k, v in (raw.get("params") or {}).items()},
        fix=FixSpec(fixer=fix["fixer"], applicability=fix["applicability"]) if fix else None,
        sources=tuple(raw.get("sources") or ()),
        tested_by=raw.get("tested-by"),
        origin=pack.origin if pack else "mlaudit",
        requires=tuple(str(r) for r in raw.get("requires") or ()),
    )


def _cache_file(folder: Path) -> Path | None:
    """Where the parsed documents of `folder` are kept: one file per rules folder in the
    user's cache dir ($XDG_CACHE_HOME/mlaudit, else ~/.cache/mlaudit). None when
    MLAUDIT_NO_CACHE is set or there is no home."""
    if os.environ.get("MLAUDIT_NO_CACHE"):
        return None
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found
        return None
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return base / "mlaudit" / f"catalog-{where}.json"


def _documents(folder: Path, cached: bool) -> list[tuple[Path, Any]]:
    """(file, parsed YAML) for every *.yaml in `folder`, sorted by name.

    With `cached`, the parsed documents are kept as JSON in the user's cache dir under the
    SHA-256 of the files' names and bytes, so a scan reads the YAML bytes and one JSON file
    instead of importing PyYAML and parsing ~100 kB of YAML (~30 ms of every run). Any
    change to a file changes the key, and the cache is only written when JSON gives back
    exactly what PyYAML produced; a missing, stale or unreadable cache is simply rebuilt.
    """
    paths = sorted(folder.glob("*.yaml"))
    # universal newlines, as read_text gives them to the parser
    texts = [p.read_bytes().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n") for p in paths]
    digest = hashlib.sha256()
    for path, text in zip(paths, texts, strict=True):
        data = text.encode("utf-8")
        digest.update(f"{path.name}\0{len(data)}\0".encode() + data)
    key = digest.hexdigest()
    cache = _cache_file(folder) if cached else None
    if cache is not None:
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            stored = json.loads(cache.read_text(encoding="utf-8"))
            if stored["key"] == key and len(stored["docs"]) == len(paths):
                return list(zip(paths, stored["docs"], strict=True))
    import yaml  # local: keeps `mlaudit --help` lean, and a cached catalog skips it

    # libyaml's C loader when PyYAML has it: ~10x faster
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [yaml.load(text, Loader=loader) or {} for text in texts]  # noqa: S506 - safe loader
    if cache is not None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            payload = json.dumps({"key": key, "docs": docs})
            if json.loads(payload)["docs"] == docs:  # only what JSON keeps exactly
                atomic_write_text(cache, payload)
    return list(zip(paths, docs, strict=True))


@functools.cache
def load_catalog(directory: Path | None = None) -> Mapping[str, RuleMeta]:
    """All rules keyed by code, sorted. Cached: the YAML is read once per process."""
    # Built-in rules, then each rules plugin's own metadata (only with the default folder).
    sources: list[tuple[Path, RulePack | None]] = [(directory or rules_dir(), None)]
    if directory is None:
        sources += [(pack.rules_dir, pack) for pack in rule_packs()]
    rules: dict[str, RuleMeta] = {}
    for folder, pack in sources:
        for path, doc in _documents(folder, cached=directory is None):
            for raw in doc.get("rules", []):
                meta = _rule(raw, path, pack)
                if meta.code in rules:
                    raise CatalogError(f"{meta.code} is defined twice (second time in {path.name})")
                rules[meta.code] = meta
    names = [m.name for m in rules.values()]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise CatalogError(f"rule names used twice: {', '.join(sorted(dupes))}")
    return dict(sorted(rules.items()))


def family_title(family: str) -> str:
    """What a family covers: a built-in family's line, or a rules plugin's own."""
    if family in FAMILIES:
        return FAMILIES[family]
    return next((p.family for p in rule_packs() if p.prefix == family), family)


def lookup(code_or_name: str) -> RuleMeta | None:
    """Find a rule by code (case-insensitive) or by its kebab-case name."""
    catalog = load_catalog()
    key = code_or_name.strip()
    if key.upper() in catalog:
        return catalog[key.upper()]
    return next((m for m in catalog.values() if m.name == key.lower()), None)
