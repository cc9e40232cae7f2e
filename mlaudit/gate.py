"""Pull-request gating after the scan: baselines, `--diff-base`, output routing, statistics.

The CLI parses flags; this module decides what they mean, so the logic is testable without
typer and `cli.py` stays a thin layer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlaudit import baseline as bl
from mlaudit.context import RuleContext
from mlaudit.model import Finding, Report

# Findings about the gate's own state (suppression config, baseline file) are reported
# whatever the diff: they are not about any one changed file.
GATE_META_CODES = ("MLA004", "MLA005", "MLA006")


class GateError(Exception):
    """Bad gate arguments or an unreadable baseline / git state: one line, exit 2."""


@dataclass(frozen=True)
class GateOptions:
    """What to do with a finished report before it is rendered and judged."""

    baseline: Path | None = None
    write_baseline: Path | None = None
    update_baseline: bool = False
    diff_base: str | None = None


def parse_outputs(specs: Sequence[str], default_format: str,
                  formats: Sequence[str]) -> list[tuple[str, str, bool]]:
    """`--output` values as (format, path, typed). `FORMAT=PATH` picks the format; a plain
    `PATH` uses `--format`. A path of `-` means stdout."""
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name in formats:
            if not path:
                raise GateError(f"--output {spec}: missing path after '='")
            out.append((name, path, True))
        elif sep and name and "/" not in name and "." not in name:
            expected = ", ".join(formats)
            raise GateError(f"--output {spec}: unknown format {name!r} (expected one of: {expected})")
        else:
            out.append((default_format, spec, False))
    to_stdout = [o for o in out if o[1] == "-"]
    if len(to_stdout) > 1:
        raise GateError("--output: only one output can go to stdout ('-')")
    files = [o[1] for o in out if o[1] != "-"]
    dupes = {p for p in files if files.count(p) > 1}
    if dupes:
        raise GateError(f"--output: {sorted(dupes)[0]} is named twice")
    return out


def apply_gate(
    report: Report,
    gate: GateOptions,
    codes: Sequence[str],
    context: Callable[[str], RuleContext],
    cwd: Path,
) -> tuple[Report, list[str]]:
    """Apply baseline writing/reading/pruning and diff restriction; returns the report and
    one-line messages for the user."""
    messages: list[str] = []
    findings: list[Finding] = list(report.findings)
    if gate.write_baseline is not None:
        entries = bl.from_findings(findings)
        _write_baseline(gate.write_baseline, entries)
        findings = list(bl.apply(findings, entries).findings)
        messages.append(f"Baseline of {sum(e.count for e in entries)} finding(s) in {len(entries)} "
                        f"entries written to {gate.write_baseline}.")
    elif gate.baseline is not None:
        try:
            entries = bl.read(gate.baseline)
        except bl.BaselineError as err:
            raise GateError(str(err)) from None
        applied = bl.apply(findings, entries, _scope(report, codes, cwd))
        findings = list(applied.findings)
        if gate.update_baseline and applied.stale:
            _write_baseline(gate.baseline, bl.pruned(entries, applied.stale))
            messages.append(f"Baseline {gate.baseline}: {len(applied.stale)} stale entries pruned.")
        if bl.STALE_CODE in codes:
            findings += bl.stale_findings(applied.stale, display_path(gate.baseline, cwd),
                                          context(bl.STALE_CODE), gate.update_baseline)
    elif gate.update_baseline:
        raise GateError("--update-baseline needs a baseline (--baseline FILE or `baseline` in config)")
    findings.sort(key=Finding.sort_key)
    report = replace(report, findings=tuple(findings))
    if gate.diff_base:
        from mlaudit.gitdiff import GitDiffError, changed_since, restrict

        try:
            changes = changed_since(gate.diff_base, cwd)
        except GitDiffError as err:
            raise GateError(f"--diff-base {gate.diff_base}: {err}") from None
        report = restrict(report, changes, cwd, keep=GATE_META_CODES)
    return report, messages


def _scope(report: Report, codes: Sequence[str], cwd: Path) -> Callable[[bl.BaselineEntry], bool]:
    """Whether this scan could have reproduced an entry: its rule ran and its path lies in a
    scanned directory (or is a scanned file)."""
    ran = set(codes)
    targets = [display_path(Path(root), cwd) for root in report.roots]

    def in_scope(entry: bl.BaselineEntry) -> bool:
        if entry.code not in ran:
            return False
        return any(t in (".", "") or entry.path == t or entry.path.startswith(t.rstrip("/") + "/")
                   for t in targets)

    return in_scope


def display_path(path: Path, cwd: Path) -> str:
    """`path` relative to `cwd` when it lies below it, else as given (POSIX)."""
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _write_baseline(path: Path, entries: list[bl.BaselineEntry]) -> None:
    try:
        bl.write(path, entries)
    except OSError as err:
        raise GateError(f"{path}: cannot write baseline: {err.strerror or err}") from None


def statistics(report: Report) -> list[str]:
    """`--statistics`: one line per rule with its count (and how many are baselined)."""
    new = Counter((f.code, f.name) for f in report.findings if not f.baselined)
    old = Counter((f.code, f.name) for f in report.findings if f.baselined)
    rows = sorted(set(new) | set(old), key=lambda k: (-new[k], k))
    lines = []
    for code, name in rows:
        tail = f"  ({old[(code, name)]} baselined)" if old[(code, name)] else ""
        lines.append(f"{new[(code, name)]:>6}  {code}  {name}{tail}")
    return lines or ["     0  (no findings)"]
