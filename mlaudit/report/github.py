"""GitHub Actions workflow commands: one `::error`/`::warning`/`::notice` line per finding.

GitHub shows them inline on the pull request's diff. Values are escaped as the runner
expects: `%`, CR and LF in the message; additionally `:` and `,` in properties (file, title).
"""

from __future__ import annotations

from typing import IO, Any

from mlaudit.model import Finding, Report, Severity
from mlaudit.report._common import is_file_location, message_with_pointer, visible_findings

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (the part after `::`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (`file=`, `title=`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding) -> str:
    """The workflow command line for one finding (baselined ones as notices)."""
    command = "notice" if f.baselined else COMMAND[f.severity]
    props = []
    if is_file_location(f.location.path):
        props.append(f"file={escape_property(f.location.path)}")
        if f.location.line:
            props.append(f"line={f.location.line}")
            if f.location.column:
                props.append(f"col={f.location.column}")
    title = f"{f.code} {f.name}" + (" (baselined)" if f.baselined else "")
    props.append(f"title={escape_property(title)}")
    message = message_with_pointer(f)
    if f.fix_hint:
        message += f"\nfix: {f.fix_hint}"
    return f"::{command} {','.join(props)}::{escape_data(message)}"


def render(report: Report, out: IO[str], *, show_baselined: bool = False, **_: Any) -> None:
    """Write one annotation per finding, then a plain summary line."""
    findings = visible_findings(report, show_baselined)
    for f in findings:
        out.write(annotation(f) + "\n")
    counts = report.counts()
    out.write(
        f"mlaudit: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info "
        f"in {report.files_scanned} files\n"
    )
