"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Rule descriptors are rendered from rules/*.yaml (the same text `mlaudit rule CODE` shows).
Every result carries a repo-relative URI with `uriBaseId`, a region (GitHub requires
`startLine`; line-less findings on binary files point at line 1 and name the tensor in the
message and in a logical location) and `partialFingerprints` from the finding fingerprint,
so alerts survive unrelated edits and do not duplicate across runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import quote

from mlaudit.catalog import family_title, load_catalog
from mlaudit.docs import rule_markdown
from mlaudit.model import Finding, Report, RuleMeta, Severity
from mlaudit.report._common import is_file_location, message_with_pointer, visible_findings
from mlaudit.report.json_format import _jsonable

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "mlauditFingerprint/v1"
INFORMATION_URI = "https://github.com/mlaudit/mlaudit"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _descriptor(meta: RuleMeta) -> dict[str, Any]:
    tags = [meta.family, family_title(meta.family)]
    if meta.family == "MLS":
        tags.append("security")
    return {
        "id": meta.code,
        "name": meta.name,
        "shortDescription": {"text": meta.summary},
        "fullDescription": {"text": " ".join(p for p in (meta.what, meta.why) if p) or meta.summary},
        "help": {"text": rule_markdown(meta), "markdown": rule_markdown(meta)},
        "defaultConfiguration": {"level": LEVEL[meta.severity]},
        "properties": {"tags": tags, "status": meta.status, "fixable": meta.fixable},
    }


def _fallback_descriptor(f: Finding) -> dict[str, Any]:
    # A finding whose code is not in the catalog (should not happen; keep the SARIF valid).
    # Codes that ran without findings are always in the catalog: rules_run comes from it.
    return {
        "id": f.code,
        "name": f.name,
        "shortDescription": {"text": f.name},
        "defaultConfiguration": {"level": LEVEL[f.severity]},
    }


def _uri(path: str) -> str:
    return quote(path.replace("\\", "/"), safe="/")


def _result(f: Finding, index: int, with_baseline_state: bool) -> dict[str, Any]:
    loc = f.location
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": _uri(loc.path) if is_file_location(loc.path) else ".",
                             "uriBaseId": SRCROOT},
        # GitHub needs region.startLine; a binary file or a project-level finding has no
        # line, so it points at the top of the file and the pointer travels in the message.
        "region": {"startLine": loc.line or 1},
    }
    if loc.line and loc.column:
        physical["region"]["startColumn"] = loc.column
    location: dict[str, Any] = {"physicalLocation": physical}
    if loc.pointer:
        location["logicalLocations"] = [{
            "name": loc.pointer.rsplit(".", 1)[-1],
            "fullyQualifiedName": loc.pointer,
            "kind": "member",
        }]
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index,
        "level": "note" if f.baselined else LEVEL[f.severity],
        "message": {"text": message_with_pointer(f)},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {"severity": f.severity.value, "evidence": _jsonable(f.evidence)},
    }
    if f.fix_hint:
        result["properties"]["fixHint"] = f.fix_hint
    if with_baseline_state:
        result["baselineState"] = "unchanged" if f.baselined else "new"
    return result


def sarif_dict(report: Report, show_baselined: bool = False,
               catalog: Mapping[str, RuleMeta] | None = None) -> dict[str, Any]:
    """The SARIF log as a dict (one run); `catalog` defaults to rules/*.yaml."""
    catalog = load_catalog() if catalog is None else catalog
    findings = visible_findings(report, show_baselined)
    codes = sorted({*report.rules_run, *(f.code for f in findings)})
    first = {f.code: f for f in reversed(findings)}
    rules = [_descriptor(catalog[c]) if c in catalog else _fallback_descriptor(first[c]) for c in codes]
    index = {code: i for i, code in enumerate(codes)}
    with_state = any(f.baselined for f in findings)
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "mlaudit",
            "version": report.tool_version,
            "semanticVersion": report.tool_version,
            "informationUri": INFORMATION_URI,
            "rules": rules,
        }},
        "columnKind": "unicodeCodePoints",
        "results": [_result(f, index[f.code], with_state) for f in findings],
        "invocations": [{
            "executionSuccessful": True,
            "toolExecutionNotifications": [
                {"level": "note", "message": {"text": note}} for note in report.notes
            ],
        }],
        "properties": {"filesScanned": report.files_scanned, "suppressed": report.suppressed},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, out: IO[str], *, show_baselined: bool = False,
           catalog: Mapping[str, RuleMeta] | None = None, **_: Any) -> None:
    """Write the report as a SARIF 2.1.0 log."""
    json.dump(sarif_dict(report, show_baselined, catalog), out, indent=2)
    out.write("\n")
