"""GitLab Code Quality report (a JSON array), shown in merge-request widgets and diffs.

Each issue has description, check_name, fingerprint, severity (info, minor, major, critical,
blocker) and location.path + location.lines.begin. GitLab collapses issues that share a
fingerprint, so a repeated finding (same fingerprint, counted in baselines) gets an
occurrence-suffixed fingerprint from its second instance on.
"""

from __future__ import annotations

import hashlib
import json
from typing import IO, Any

from mlaudit.model import Finding, Report, Severity
from mlaudit.report._common import is_file_location, message_with_pointer, visible_findings

# Security errors (MLS) are critical; other errors block less. Nothing maps to blocker:
# mlaudit has no severity above error, and inventing one would be dishonest.
SEVERITY = {Severity.INFO: "info", Severity.WARNING: "minor", Severity.ERROR: "major"}
CATEGORY = {
    "MLS": "Security", "MLC": "Performance", "MLG": "Bug Risk", "MLT": "Bug Risk",
    "MLR": "Bug Risk", "MLK": "Style", "MLX": "Bug Risk", "MLV": "Complexity",
    "MLQ": "Style", "MLH": "Bug Risk", "MLA": "Bug Risk",
}  # fmt: skip


def severity(f: Finding) -> str:
    """Code Quality severity for a finding."""
    if f.baselined:
        return "info"
    if f.severity is Severity.ERROR and f.code.startswith("MLS"):
        return "critical"
    return SEVERITY[f.severity]


def issues(report: Report, show_baselined: bool = False) -> list[dict[str, Any]]:
    """The Code Quality issues for a report."""
    seen: dict[str, int] = {}
    out = []
    for f in visible_findings(report, show_baselined):
        n = seen.get(f.fingerprint, 0)
        seen[f.fingerprint] = n + 1
        fp = f.fingerprint if n == 0 else hashlib.sha256(f"{f.fingerprint}:{n}".encode()).hexdigest()[:32]
        path = f.location.path if is_file_location(f.location.path) else "."
        out.append({
            "type": "issue",
            "description": f"{f.code} {message_with_pointer(f)}",
            "check_name": f"{f.code} {f.name}",
            "fingerprint": fp,
            "severity": severity(f),
            "categories": [CATEGORY.get(f.code[:3], "Bug Risk")],
            "location": {"path": path, "lines": {"begin": f.location.line or 1}},
        })
    return out


def render(report: Report, out: IO[str], *, show_baselined: bool = False, **_: Any) -> None:
    """Write the Code Quality JSON array."""
    json.dump(issues(report, show_baselined), out, indent=2)
    out.write("\n")
