"""Typed rule parameters: built once per rule from the YAML schema and the settings overrides.

A check reads `ctx.params.max_ratio` (kebab-case YAML names become snake_case attributes);
values already have their declared type (int, float, bool, str, or a tuple of str for
`list[str]`), so no check casts. A misspelt attribute is an AttributeError naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlaudit.model import ParamSpec, RuleMeta

PARAM_TYPES = ("int", "float", "bool", "str", "list[str]")


def attribute_name(param: str) -> str:
    """`max-header-bytes` -> `max_header_bytes`."""
    return param.replace("-", "_")


def coerce(spec: ParamSpec, value: Any) -> Any:
    """`value` as the declared type of `spec`; ValueError (one line) when it is not one."""
    kind = spec.type
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "list[str]" and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{spec.name} must be {kind}, got {value!r}")


class RuleParams:
    """One rule's resolved parameters, read as attributes."""

    __slots__ = ("_code", "_values")

    def __init__(self, code: str, values: Mapping[str, Any]) -> None:
        self._code = code
        self._values = {attribute_name(k): v for k, v in values.items()}

    @classmethod
    def build(cls, meta: RuleMeta, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> RuleParams:
        """YAML defaults overlaid with `overrides[meta.code]`, each checked against its type."""
        given = (overrides or {}).get(meta.code, {})
        unknown = sorted(set(given) - set(meta.params))
        if unknown:
            raise ValueError(f"{meta.code} has no param {unknown[0]!r}")
        return cls(meta.code, {
            name: coerce(spec, given[name] if name in given else spec.default)
            for name, spec in meta.params.items()
        })

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._code} has no param {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def as_dict(self) -> dict[str, Any]:
        """Attribute name -> value (for evidence and debugging)."""
        return dict(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"RuleParams({self._code}: {inner})"
