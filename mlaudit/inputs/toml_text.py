"""TOML text parsed with the standard library on 3.11+ and `tomli` on 3.10 (the project
supports both; `tomllib` only exists from 3.11). Imported lazily by its callers: the parser
costs ~8 ms, which a scan should only pay when it meets TOML."""

from __future__ import annotations

import sys
from typing import Any


def load_toml(text: str) -> dict[str, Any]:
    """The parsed document; raises ValueError (the parser's TOMLDecodeError) on invalid TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10 only
        import tomli as tomllib
    return tomllib.loads(text)


def parse_toml(text: str) -> dict[str, Any] | None:
    """The parsed document, or None when `text` is not valid TOML."""
    try:
        return load_toml(text)
    except (ValueError, UnicodeDecodeError):
        return None
