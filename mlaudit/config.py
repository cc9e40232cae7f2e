"""Project configuration: `[tool.mlaudit]` in pyproject.toml, or mlaudit.yaml / .mlaudit.yaml.

The nearest file to the scan path wins (walking up). Every key is validated; an unknown
key, rule code or badly typed value is a ConfigError whose message names the key and file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.model import ParamSpec, RuleMeta, Severity
from mlaudit.params import coerce
from mlaudit.selection import SelectionError, validate

YAML_NAMES = ("mlaudit.yaml", ".mlaudit.yaml")


class ConfigError(Exception):
    """Bad project configuration; the message is one line naming file and key."""


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_table(v: Any) -> bool:
    return isinstance(v, dict)


# key -> (validator, human description of the expected type)
KEYS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "select": (_is_str_list, "a list of rule codes or prefixes"),
    "ignore": (_is_str_list, "a list of rule codes or prefixes"),
    "extend-select": (_is_str_list, "a list of rule codes or prefixes"),
    "fail-on": (lambda v: isinstance(v, str), "one of error, warning, info"),
    "format": (lambda v: isinstance(v, str), "an output format name"),
    "output": (lambda v: isinstance(v, str), "a file path"),
    "exclude": (_is_str_list, "a list of glob patterns"),
    "respect-gitignore": (lambda v: isinstance(v, bool), "true or false"),
    "per-file-ignores": (_is_table, "a table of glob = [codes] or glob = {codes = [...], reason = \"...\"}"),
    "require-suppression-reason": (lambda v: isinstance(v, bool), "true or false"),
    "baseline": (lambda v: isinstance(v, str), "a file path"),
    "params": (_is_table, "a table of rule code = {param = value}"),
    "severity": (_is_table, "a table of rule code = severity"),
    "allow-code": (lambda v: isinstance(v, bool), "true or false"),
}


@dataclass(frozen=True)
class ProjectConfig:
    """Validated config values (kebab-case keys) and the file they came from."""

    path: Path | None
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path | None:
        return self.path.parent if self.path else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _read_pyproject(path: Path) -> dict[str, Any] | None:
    from mlaudit.inputs.toml_text import load_toml

    try:
        data = load_toml(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    tool = data.get("tool", {})
    return tool.get("mlaudit") if isinstance(tool, dict) else None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "malformed YAML"
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def find_config(start: Path) -> Path | None:
    """The nearest config file at or above `start` (a dir or a file's dir)."""
    directory = start if start.is_dir() else start.parent
    for d in (directory.resolve(), *directory.resolve().parents):
        for name in YAML_NAMES:
            if (d / name).is_file():
                return d / name
        pyproject = d / "pyproject.toml"
        if pyproject.is_file() and _read_pyproject(pyproject) is not None:
            return pyproject
    return None


def read_config(path: Path) -> dict[str, Any]:
    """Raw settings from a config file (pyproject's [tool.mlaudit] or a YAML file)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    raw = _read_pyproject(path) if path.name.endswith(".toml") else _read_yaml(path)
    if raw is None:
        raise ConfigError(f"{path}: has no [tool.mlaudit] table")
    return raw


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_param(path: Path, code: str, spec: ParamSpec, value: Any) -> Any:
    try:
        return coerce(spec, value)
    except ValueError as err:
        raise ConfigError(f"{path}: params.{code}.{err}") from None


def _per_file_ignores(
    path: Path, table: Mapping[str, Any], codes: list[str]
) -> tuple[dict[str, tuple[str, ...]], dict[str, str | None]]:
    """Normalize per-file-ignores: each value is a list of codes or {codes = [...], reason = "..."}."""
    pfi: dict[str, tuple[str, ...]] = {}
    reasons: dict[str, str | None] = {}
    for glob, entry in table.items():
        reason = None
        if isinstance(entry, dict):
            unknown = set(entry) - {"codes", "reason"}
            if unknown:
                raise ConfigError(
                    f"{path}: per-file-ignores.{glob!r}: unknown key {sorted(unknown)[0]!r} "
                    "(expected codes, reason)"
                )
            reason = entry.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise ConfigError(f"{path}: per-file-ignores.{glob!r}.reason must be a string")
            entry = entry.get("codes")
        if not _is_str_list(entry):
            raise ConfigError(
                f"{path}: per-file-ignores.{glob!r} must be a list of codes or a table "
                "{codes = [...], reason = \"...\"}"
            )
        pfi[glob] = tuple(validate(entry, codes))
        reasons[glob] = reason
    return pfi, reasons


def validate_config(
    path: Path, raw: Mapping[str, Any], catalog: Mapping[str, RuleMeta]
) -> ProjectConfig:
    """Check every key, code and param type; normalize rule codes to upper case."""
    values: dict[str, Any] = {}
    codes = list(catalog)
    for key, value in raw.items():
        if key not in KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}{_suggest(key, list(KEYS))}")
        check, expected = KEYS[key]
        if not check(value):
            raise ConfigError(f"{path}: {key!r} must be {expected}, got {value!r}")
        values[key] = value
    try:
        for key in ("select", "ignore", "extend-select"):
            if key in values:
                values[key] = validate(values[key], codes)
        if "per-file-ignores" in values:
            pfi, reasons = _per_file_ignores(path, values["per-file-ignores"], codes)
            values["per-file-ignores"] = pfi
            # Derived, not a settings key: why each glob is suppressed (None: no reason).
            values["per-file-ignore-reasons"] = reasons
    except SelectionError as err:
        raise ConfigError(f"{path}: {err}") from None
    if "fail-on" in values:
        try:
            Severity.parse(values["fail-on"])
        except ValueError as err:
            raise ConfigError(f"{path}: fail-on: {err}") from None
    params: dict[str, dict[str, Any]] = {}
    for code, table in (values.get("params") or {}).items():
        meta = catalog.get(str(code).upper())
        if meta is None:
            raise ConfigError(f"{path}: params: unknown rule code {code!r}")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: params.{code} must be a table of param = value")
        for name, value in table.items():
            if name not in meta.params:
                hint = _suggest(name, list(meta.params))
                raise ConfigError(f"{path}: params.{code}: {meta.code} has no param {name!r}{hint}")
            params.setdefault(meta.code, {})[name] = _check_param(
                path, meta.code, meta.params[name], value
            )
    if "params" in values:
        values["params"] = params
    severities = {}
    for code, sev in (values.get("severity") or {}).items():
        if str(code).upper() not in catalog:
            raise ConfigError(f"{path}: severity: unknown rule code {code!r}")
        try:
            severities[str(code).upper()] = Severity.parse(str(sev)).value
        except ValueError as err:
            raise ConfigError(f"{path}: severity.{code}: {err}") from None
    if "severity" in values:
        values["severity"] = severities
    return ProjectConfig(path=path, values=values)


def load_project_config(
    start: Path, explicit: Path | None, isolated: bool, catalog: Mapping[str, RuleMeta]
) -> ProjectConfig:
    """Find (unless `isolated`), read and validate the project config."""
    if isolated:
        return ProjectConfig(path=None)
    path = explicit or find_config(start)
    if path is None:
        return ProjectConfig(path=None)
    return validate_config(path, read_config(path), catalog)


