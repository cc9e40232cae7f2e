"""acme-csv: one CSV row per finding (code, severity, path, line, message)."""

from __future__ import annotations

import csv
from typing import IO, Any

from mlaudit.model import Report


def render(report: Report, out: IO[str], **options: Any) -> None:
    """Write the report's findings as CSV with a header row."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "severity", "path", "line", "message"])
    for f in report.findings:
        if f.baselined and not options.get("show_baselined"):
            continue
        writer.writerow([f.code, f.severity.value, f.location.path, f.location.line or "", f.message])
