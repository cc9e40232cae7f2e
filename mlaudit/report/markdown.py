"""Markdown summary for pull-request comments and `$GITHUB_STEP_SUMMARY`: counts per
severity and per rule, then the top findings (most severe first)."""

from __future__ import annotations

from collections import Counter
from typing import IO, Any

from mlaudit.model import Finding, Report, Severity
from mlaudit.report._common import message_with_pointer, visible_findings

TOP = 20


def cell(text: str) -> str:
    """Escape text for a Markdown table cell (pipes, newlines, backticks stay readable)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def _row(f: Finding) -> str:
    sev = "baselined" if f.baselined else f.severity.value
    return (f"| {f.code} | {sev} | `{cell(f.location.display())}` | "
            f"{cell(message_with_pointer(f))} |")


def render(report: Report, out: IO[str], *, show_baselined: bool = False, top: int = TOP,
           **_: Any) -> None:
    """Write the Markdown summary."""
    counts = report.counts()
    findings = visible_findings(report, show_baselined)
    new = [f for f in findings if not f.baselined]
    baselined = sum(1 for f in report.findings if f.baselined)
    lines = ["## mlaudit report", ""]
    status = "no findings" if not new else f"{len(new)} finding{'s' if len(new) != 1 else ''}"
    lines.append(f"**{status}** in {report.files_scanned} files "
                 f"({len(report.rules_run)} rules, {report.duration_s:.2f} s).")
    lines += ["", "| severity | count |", "|---|---:|"]
    lines += [f"| {s.value} | {counts[s.value]} |" for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)]
    if baselined:
        lines.append(f"| baselined | {baselined} |")
    if report.suppressed:
        lines.append(f"| suppressed | {report.suppressed} |")
    if new:
        per_rule = Counter((f.code, f.name) for f in new)
        lines += ["", "### Findings per rule", "", "| rule | name | count |", "|---|---|---:|"]
        lines += [f"| {c} | {n} | {k} |" for (c, n), k in sorted(per_rule.items())]
    if findings:
        ranked = sorted(findings, key=lambda f: (f.baselined, -f.severity.rank, f.sort_key()))
        shown = ranked[:top]
        lines += ["", f"### Top findings ({len(shown)} of {len(findings)})", "",
                  "| rule | severity | location | message |", "|---|---|---|---|"]
        lines += [_row(f) for f in shown]
    for note in report.notes:
        lines += ["", f"> {cell(note)}"]
    out.write("\n".join(lines) + "\n")
