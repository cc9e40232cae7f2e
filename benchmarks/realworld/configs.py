"""Part `configs`: the 68 real training/launcher/data configs in ../shared/realworld/configs,
judged against our labels in configs.yaml.

Each file is scanned twice with the mlaudit CLI (JSON output): named on its own (as pre-commit
does) and inside a scan of its project folder (where Hydra groups, overlays and launcher ->
DeepSpeed references have their context). A labelled debt is found when either scan prints a
finding on its line or key path; every finding printed on a corpus file by either scan that
matches no label counts as wrong. Findings on folders (no README, ...) are another part's
business and are only counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.realworld._common import Judged, Scan, dedupe, judge, labels, pct, scan, short

PART = "configs"
LABELS = Path(__file__).with_name("configs.yaml")
CONFIG_RULE_PREFIXES = ("MLT", "MLR")


def verdict(named: Scan, path: str) -> str:
    """The dialect mlaudit gave a file named on its own: the `dialect` of its config artifact;
    for versions that do not report one, whether it printed training-config findings."""
    report = named.report or {}
    for art in report.get("artifacts", []):
        details = art.get("details") or {}
        if art.get("path") == path and "dialect" in details:
            return str(details["dialect"])
    if any(f["code"].startswith(CONFIG_RULE_PREFIXES) for f in named.findings_on(path)):
        return "training (no dialect shown)"
    return "silent"


def _dialect_ok(got: str, expected: list[str]) -> bool:
    # `silent` in a label: not reading the file at all is right too (e.g. a Python module that
    # imports other modules and cannot be evaluated without running it).
    return got in expected or (got == "silent" and ("not-training" in expected or "silent" in expected))


def run(shared: Path) -> dict[str, Any]:
    spec = yaml.safe_load(LABELS.read_text())["files"]
    return evaluate(shared / "configs", spec, "configs")


def evaluate(corpus: Path, spec: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Scan every labelled file of `corpus` (named, and inside its project folder) and judge the
    findings against `spec` (entries with `file`, `dialect`, `debt`, `acceptable`)."""
    projects = sorted({entry["file"].split("/", 1)[0] for entry in spec})
    project_scans = {p: scan(p, corpus) for p in projects}
    totals = {"files": 0, "dialect_right": 0, "debt": 0, "found": 0, "printed": 0, "wrong": 0,
              "accepted": 0, "tracebacks": 0, "mla002_on_non_training": 0,
              "exit2_on_non_training": 0, "out_of_scope_findings": 0}
    per_file = []
    for entry in spec:
        path = entry["file"]
        expected = entry["dialect"] if isinstance(entry["dialect"], list) else [entry["dialect"]]
        named = scan(path, corpus)
        project = project_scans[path.split("/", 1)[0]]
        got = verdict(named, path)
        findings = dedupe(named.findings_on(path) + project.findings_on(path))
        result: Judged = judge(findings, labels(entry.get("debt")), labels(entry.get("acceptable")))
        non_training = expected == ["not-training"] or "accelerate" in expected
        mla002 = any(f["code"] == "MLA002" for f in findings)
        totals["files"] += 1
        totals["dialect_right"] += _dialect_ok(got, expected)
        totals["debt"] += len(result.found) + len(result.missed)
        totals["found"] += len(result.found)
        totals["printed"] += result.printed
        totals["wrong"] += len(result.wrong)
        totals["accepted"] += len(result.accepted)
        totals["tracebacks"] += bool(named.traceback)
        totals["mla002_on_non_training"] += non_training and mla002
        totals["exit2_on_non_training"] += non_training and named.rc == 2
        per_file.append({
            "file": path, "dialect": got, "expected": expected, "dialect_ok": _dialect_ok(got, expected),
            "exit_code": named.rc, "traceback": bool(named.traceback),
            "found": [lb.key or lb.line for lb in result.found],
            "missed": [{"key": lb.key, "line": lb.line, "why": lb.why} for lb in result.missed],
            "wrong": [short(f) for f in result.wrong],
            "accepted": [short(f) for f in result.accepted],
        })
        _print_file(per_file[-1], named)
    labelled = {e["file"] for e in spec}
    for s in project_scans.values():
        totals["out_of_scope_findings"] += sum(
            1 for f in (s.report or {}).get("findings", []) if f["location"]["path"] not in labelled)
        totals["tracebacks"] += bool(s.traceback)
    summary = {
        **totals,
        "dialect_accuracy_pct": pct(totals["dialect_right"], totals["files"]),
        "recall_pct": pct(totals["found"], totals["debt"]),
        "wrong_finding_pct": pct(totals["wrong"], totals["printed"]),
    }
    _print_summary(summary, name)
    return {"summary": summary, "files": per_file}


def _print_file(row: dict[str, Any], named: Scan) -> None:
    mark = "ok " if row["dialect_ok"] else "BAD"
    debt = len(row["found"]) + len(row["missed"])
    print(f"{row['file']}\n  dialect {mark} {row['dialect']!r} (label {'/'.join(row['expected'])})"
          f"  debt {len(row['found'])}/{debt}  wrong {len(row['wrong'])}  exit {row['exit_code']}")
    for m in row["missed"]:
        print(f"    missed  {m['line'] or ''}:{m['key'] or ''} - {m['why'][:110]}")
    for w in row["wrong"]:
        print(f"    wrong   {w}")
    if named.traceback:
        print("    TRACEBACK: " + named.traceback.strip().splitlines()[-1][:150])


def _print_summary(s: dict[str, Any], name: str) -> None:
    print(
        f"\n{name}: {s['files']} files | dialect right {s['dialect_right']}/{s['files']}"
        f" ({s['dialect_accuracy_pct']}%) | labelled debt found {s['found']}/{s['debt']}"
        f" ({s['recall_pct']}%) | wrong findings {s['wrong']}/{s['printed']}"
        f" ({s['wrong_finding_pct']}%), {s['accepted']} accepted"
        f" | tracebacks {s['tracebacks']} | MLA002 on non-training {s['mla002_on_non_training']}"
        f" | exit 2 on non-training {s['exit2_on_non_training']}"
        f" | findings on folders (other parts) {s['out_of_scope_findings']}"
    )
