"""Human-readable terminal report (rich): findings grouped by file, then a summary line.

rich is imported only when a report is drawn: `summary_line` alone (`scan -q`) needs none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby
from typing import IO, TYPE_CHECKING, Any

from mlaudit.model import Finding, Report, Severity
from mlaudit.units import format_bytes

if TYPE_CHECKING:  # rich.table is imported only when there is a table to print
    from rich.console import Console
    from rich.table import Table

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def format_value(value: Any) -> str:
    """Compact rendering of an evidence number: 4 significant digits, thousands separators."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, Mapping):  # structured report data (a curve): too long for a terminal line
        return "{" + ", ".join(str(k) for k in list(value)[:6]) + (", ..." if len(value) > 6 else "") + "}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(v) for v in value[:6])
        return f"[{shown}{', ...' if len(value) > 6 else ''}]"
    return str(value)


def _finding_lines(f: Finding, verbose: bool) -> list[str]:
    from rich.markup import escape

    loc = f.location
    where = ""
    if loc.line is not None:
        where = f"{loc.line}:"
    if loc.pointer:
        where += f"{escape(loc.pointer)}: "
    elif where:
        where += " "
    sev = f.severity
    tag = " [dim](baselined)[/dim]" if f.baselined else ""
    lines = [
        f"  [{STYLE[sev]}]{f.code}[/] [{STYLE[sev]}]{sev.value:<7}[/] {where}{escape(f.message)}"
        f" [dim]\\[{f.name}][/dim]{tag}"
    ]
    if verbose and f.evidence:
        shown = ", ".join(f"{k}={format_value(v)}" for k, v in f.evidence.items())
        lines.append(f"      [dim]evidence: {escape(shown)}[/dim]")
    if f.fix_hint:
        lines.append(f"      [green]fix:[/green] {escape(f.fix_hint)}")
    return lines


def summary_line(report: Report) -> str:
    counts = report.counts()
    parts = [f"{counts[s.value]} {s.value}{'s' if counts[s.value] != 1 else ''}" for s in
             (Severity.ERROR, Severity.WARNING, Severity.INFO)]
    extra = []
    if report.suppressed:
        extra.append(f"{report.suppressed} suppressed")
    baselined = sum(1 for f in report.findings if f.baselined)
    if baselined:
        extra.append(f"{baselined} baselined")
    tail = f"; {', '.join(extra)}" if extra else ""
    return (
        f"Found {', '.join(parts)} in {report.files_scanned} files "
        f"({report.duration_s:.2f} s, {len(report.rules_run)} rules){tail}."
    )


def _artifact_table(report: Report) -> Table | None:
    rows = [a for a in report.artifacts if a.kind == "checkpoint"]
    if not rows:
        return None
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Checkpoints", title_justify="left", show_edge=False)
    for col in ("file", "format", "tensors", "parameters", "size"):
        numeric = col in {"tensors", "parameters", "size"}
        # Paths wrap rather than being cut: a truncated path cannot be found again.
        table.add_column(col, justify="right" if numeric else "left", overflow="fold",
                         no_wrap=numeric, min_width=len(col) if numeric else None)
    # The reader counts every stored element (optimizer moments, callback scalars included);
    # the layout, when it ran, knows which tensors are the model's parameters.
    model_params = {a.path: a.details["parameters"] for a in report.artifacts
                    if a.kind == "checkpoint-layout" and isinstance(a.details.get("parameters"), int)}
    for a in rows:
        d = a.details
        size = d.get("size_bytes")
        params = model_params.get(a.path, d.get("parameters"))
        table.add_row(
            escape(a.path),
            str(d.get("format", "?")),
            format_value(d["tensors"]) if "tensors" in d else "-",
            format_value(params) if params is not None else "-",
            format_bytes(size) if isinstance(size, int) else "-",
        )
    return table


def render(
    report: Report,
    out: IO[str],
    *,
    console: Console | None = None,
    quiet: bool = False,
    verbose: bool = False,
    show_baselined: bool = False,
    **_: Any,
) -> None:
    """Write the report; `quiet` prints only the summary line; baselined findings are
    shown (tagged) only with `verbose` or `show_baselined`."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(file=out, highlight=False, soft_wrap=True)
    if not quiet:
        visible = [f for f in report.findings if verbose or show_baselined or not f.baselined]
        for path, group in groupby(visible, key=lambda f: f.location.path):
            console.print(f"[bold]{escape(path)}[/bold]")
            for f in group:
                for line in _finding_lines(f, verbose):
                    console.print(line)
        table = _artifact_table(report)
        if table is not None:
            console.print(table)
        if verbose:
            for a in report.artifacts:
                if a.kind == "config":
                    console.print(f"[dim]config {escape(a.path)}: {escape(str(a.details.get('dialect')))}"
                                  f" ({escape(str(a.details.get('why', '')))})[/dim]")
        for note in report.notes:
            console.print(f"[dim]note: {escape(note)}[/dim]")
        if verbose:
            for line in report.skipped:
                console.print(f"[dim]skipped: {escape(line)}[/dim]")
    console.print(summary_line(report))
