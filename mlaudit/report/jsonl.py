"""JSON Lines for fleet scans: one JSON object per line, so a registry of thousands of files
can be filtered with `grep`/`jq -c` and loaded line by line (docs/scale.md).

Lines, grouped by file in path order: for each checkpoint, one `{"type": "checkpoint", ...}`
line with its verdict and what reading it cost (every file scanned, clean ones included), then
one `{"type": "finding", ...}` line per finding (the objects of the JSON format's `findings`);
findings not tied to a checkpoint follow in the report's order; the last line is
`{"type": "summary", ...}`. Nothing spans lines, so a consumer that stops early still holds
whole records.
"""

from __future__ import annotations

import json
from typing import IO, Any

from mlaudit.model import Report
from mlaudit.report.json_format import SCHEMA_VERSION, _jsonable, finding_dict


def lines(report: Report) -> list[dict[str, Any]]:
    """The records of `report`, in output order."""
    by_path: dict[str, list[dict[str, Any]]] = {}
    out: list[dict[str, Any]] = []
    checkpoints = {a.path: a for a in report.artifacts if a.kind == "checkpoint"}
    for f in report.findings:
        record = {"type": "finding", **finding_dict(f)}
        if f.location.path in checkpoints:
            by_path.setdefault(f.location.path, []).append(record)
        else:
            out.append(record)
    grouped: list[dict[str, Any]] = []
    for path in sorted(checkpoints):
        grouped.append({"type": "checkpoint", "path": path, **_jsonable(dict(checkpoints[path].details))})
        grouped.extend(by_path.get(path, []))
    summary = {
        "type": "summary",
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mlaudit", "version": report.tool_version},
        "roots": list(report.roots),
        "counts": report.counts(),
        "files_scanned": report.files_scanned,
        "checkpoints": len(checkpoints),
        "duration_s": round(report.duration_s, 4),
        "suppressed": report.suppressed,
        "notes": list(report.notes),
    }
    return [*grouped, *out, summary]


def render(report: Report, out: IO[str], **_: Any) -> None:
    for record in lines(report):
        out.write(json.dumps(record, separators=(",", ":")) + "\n")
