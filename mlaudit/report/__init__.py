"""Output formats. Each module exposes `render(report, out, **options)` and registers here.

Formats depend on the data model only, never on the engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import IO, Any

from mlaudit.model import Report

Renderer = Callable[..., None]

# name -> module under mlaudit.report; imported only when used, so a text scan never
# pays for json schema or XML code.
FORMATS: dict[str, str] = {
    "text": "mlaudit.report.text",
    "json": "mlaudit.report.json_format",
    "sarif": "mlaudit.report.sarif",
    "github": "mlaudit.report.github",
    "gitlab": "mlaudit.report.gitlab",
    "junit": "mlaudit.report.junit",
    "markdown": "mlaudit.report.markdown",
}


def renderer(name: str) -> Renderer:
    """The render function of a format; KeyError for an unknown name."""
    return importlib.import_module(FORMATS[name]).render


def render(name: str, report: Report, out: IO[str], **options: Any) -> None:
    renderer(name)(report, out, **options)
