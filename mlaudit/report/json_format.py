"""Versioned JSON document; its schema lives in mlaudit/schemas/report.schema.json."""

from __future__ import annotations

import json
from typing import IO, Any

from mlaudit.model import Finding, Report

SCHEMA_VERSION = "1.0"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def finding_dict(f: Finding) -> dict[str, Any]:
    loc = f.location
    return {
        "code": f.code,
        "name": f.name,
        "severity": f.severity.value,
        "message": f.message,
        "location": {"path": loc.path, "line": loc.line, "column": loc.column, "pointer": loc.pointer},
        "fix_hint": f.fix_hint,
        "fixable": f.fixable,
        # the fix the finding carries (what `mlaudit fix` plans from), null for rules without one
        "fix": None if f.fix is None else {
            "fixer": f.fix.fixer, "applicability": f.fix.applicability,
            "args": {k: v if isinstance(v, str) else list(v) for k, v in f.fix.args.items()},
        },
        "evidence": _jsonable(dict(f.evidence)),
        "fingerprint": f.fingerprint,
        "baselined": f.baselined,
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mlaudit", "version": report.tool_version},
        "roots": list(report.roots),
        "summary": {
            "counts": report.counts(),
            "files_scanned": report.files_scanned,
            "duration_s": round(report.duration_s, 4),
            "suppressed": report.suppressed,
        },
        "rules_run": list(report.rules_run),
        "artifacts": [
            {"path": a.path, "kind": a.kind, "details": _jsonable(dict(a.details))}
            for a in report.artifacts
        ],
        "findings": [finding_dict(f) for f in report.findings],
        "notes": list(report.notes),
    }


def render(report: Report, out: IO[str], **_: Any) -> None:
    # dumps, then one write: dump() writes each of the encoder's chunks separately (~400,000
    # writes for a 1,000-checkpoint report); the text is the same
    out.write(json.dumps(report_dict(report), indent=2, sort_keys=False))
    out.write("\n")
