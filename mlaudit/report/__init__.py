"""Output formats. Each module exposes `render(report, out, **options)` and is listed here
(plugins add theirs through `mlaudit.formats` entry points, see docs/plugins.md).

Formats depend on the data model only, never on the engine.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import IO, Any

from mlaudit import plugins
from mlaudit.model import RegistryError, Report

Renderer = Callable[..., None]

# name -> module under mlaudit.report; imported only when used, so a text scan never
# pays for json schema or XML code.
FORMATS: dict[str, str] = {
    "text": "mlaudit.report.text",
    "json": "mlaudit.report.json_format",
    "jsonl": "mlaudit.report.jsonl",  # one record per line, for fleet scans
    "sarif": "mlaudit.report.sarif",
    "github": "mlaudit.report.github",
    "gitlab": "mlaudit.report.gitlab",
    "junit": "mlaudit.report.junit",
    "markdown": "mlaudit.report.markdown",
    "html": "mlaudit.report.html",  # draws with matplotlib, imported only here
}


@functools.cache
def available_formats() -> dict[str, str]:
    """Format name -> module: the built-in ones, then plugins' (collisions: RegistryError)."""
    return {**FORMATS, **plugins.format_modules(FORMATS)}


def renderer(name: str) -> Renderer:
    """The render function of a format; KeyError for an unknown name."""
    module = available_formats()[name]
    try:
        render_fn = getattr(importlib.import_module(module), "render", None)
    except ImportError as err:
        raise RegistryError(f"output format {name!r}: cannot import {module}: {err}") from None
    if not callable(render_fn):
        raise RegistryError(f"output format {name!r}: {module} has no render(report, out, **options)")
    return render_fn


def render(name: str, report: Report, out: IO[str], **options: Any) -> None:
    """Write `report` to `out` in format `name`."""
    renderer(name)(report, out, **options)
