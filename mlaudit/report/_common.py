"""Helpers shared by the CI output formats (SARIF, GitHub, GitLab, JUnit, Markdown)."""

from __future__ import annotations

from mlaudit.model import Finding, Report


def visible_findings(report: Report, show_baselined: bool) -> list[Finding]:
    """Findings a CI format reports: baselined ones only when asked (`--show-baselined`)."""
    return [f for f in report.findings if show_baselined or not f.baselined]


def is_file_location(path: str) -> bool:
    """False for project-level findings that point at the scan root rather than a file."""
    return path not in ("", ".") and not path.endswith("/")


def message_with_pointer(f: Finding) -> str:
    """The message, plus the pointer (tensor name, config key) when the message lacks it.

    Binary checkpoints have no lines, so the pointer is the only way a reader of an
    annotation or a code-scanning alert learns which tensor the finding is about.
    """
    pointer = f.location.pointer
    if pointer and pointer not in f.message:
        return f"{f.message} (at {pointer})"
    return f.message
