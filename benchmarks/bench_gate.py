"""Gate post-processing at scale: render each CI format and apply a baseline for a synthetic
report of 20,000 findings over 2,000 files (a large monorepo full of debt)."""

from __future__ import annotations

import io
import time

from mlaudit import baseline as bl
from mlaudit.catalog import load_catalog
from mlaudit.model import Finding, Location, Report, Severity, fingerprint
from mlaudit.report import render

FINDINGS = 20_000
FILES = 2_000


def _report() -> Report:
    codes = list(load_catalog())
    sevs = list(Severity)
    findings = []
    for i in range(FINDINGS):
        code = codes[i % len(codes)]
        path = f"models/part{i % FILES:04d}.pt"
        pointer = f"layer.{i % 97}.weight"
        findings.append(Finding(code, "rule-name", sevs[i % 3], f"value {i} is out of range",
                                Location(path, pointer=pointer),
                                fingerprint=fingerprint(code, path, pointer, str(i % 5))))
    findings.sort(key=Finding.sort_key)
    return Report("bench", (".",), tuple(findings), FILES, 1.0, rules_run=tuple(codes))


def run() -> dict:
    report = _report()
    out: dict = {"findings": FINDINGS, "files": FILES}
    for fmt in ("sarif", "github", "gitlab", "junit", "markdown"):
        buffer = io.StringIO()
        started = time.perf_counter()
        render(fmt, report, buffer)
        out[f"{fmt}_render_s"] = round(time.perf_counter() - started, 3)
        out[f"{fmt}_bytes"] = len(buffer.getvalue().encode())
    started = time.perf_counter()
    entries = bl.from_findings(report.findings)
    text = bl.dumps(entries)
    out["baseline_write_s"] = round(time.perf_counter() - started, 3)
    out["baseline_entries"] = len(entries)
    out["baseline_bytes"] = len(text.encode())
    started = time.perf_counter()
    applied = bl.apply(report.findings, entries[: len(entries) // 2])
    out["baseline_apply_s"] = round(time.perf_counter() - started, 3)
    out["baselined"] = applied.matched
    return out
