"""Recall and wrong-finding rate of `mlaudit scan` on snapshots of public training repositories.

Labels live in benchmarks/realworld/repos.yaml (our own words; see its header for the schema
and for how to recreate each snapshot). Run: `python -m benchmarks.realworld.repos [REPO ...]`,
or as the `repos` part of `make realworld` (`python -m benchmarks.realworld repos`).
Snapshots are looked for in $MLAUDIT_REALREPOS, ../realrepos beside
the repository root, then /work/realrepos; a repository whose snapshot is absent is skipped
with a message saying how to recreate it. Numbers go to benchmarks/results/realworld-repos.json.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LABELS = Path(__file__).resolve().parent / "repos.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "realworld-repos.json"
# The held-out set: other repositories, labelled before mlaudit was first run on them.
HELDOUT_LABELS = LABELS.with_name("repos_heldout.yaml")
HELDOUT_RESULTS = RESULTS.with_name("realworld-repos-heldout.json")
PART = "repos"  # the name `python -m benchmarks.realworld` knows this part by
LINE_SLACK = 3
# Rule families whose inputs are training configs or checkpoints (issue 12 and others);
# reported separately so the code/repo rules' own precision is visible.
CONFIG_FAMILIES = ("MLT", "MLC", "MLG")


def snapshot_root() -> Path | None:
    """The folder holding <owner>__<name> snapshots, or None when none exists."""
    candidates = [os.environ.get("MLAUDIT_REALREPOS"), str(ROOT.parent / "realrepos"), "/work/realrepos"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@dataclass
class Finding:
    """One finding as the runner sees it: code, path relative to the snapshot, line, message."""

    code: str
    path: str
    line: int | None
    message: str


def _path_matches(pattern: str, path: str) -> bool:
    if pattern == ".":
        return path == "."
    return path == pattern or fnmatch.fnmatch(path, pattern)


def _codes_match(codes: list[str], code: str) -> bool:
    return any(code.startswith(c) for c in codes)


def matches(entry: dict[str, Any], f: Finding) -> bool:
    """Whether a label (debt item or judgement) covers a finding."""
    if not _codes_match(entry.get("codes", []), f.code) or not _path_matches(entry["path"], f.path):
        return False
    line = entry.get("line")
    if line is not None and (f.line is None or abs(f.line - int(line)) > LINE_SLACK):
        return False
    return entry.get("contains", "") in f.message


def scan(snapshot: Path) -> tuple[list[Finding], float]:
    """Run the installed mlaudit on one snapshot as a separate process; findings + wall seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "mlaudit", "scan", str(snapshot), "--isolated", "--exit-zero",
               "--quiet", "--format", "json", "--output", str(out)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=snapshot.parent)
        wall = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"mlaudit failed on {snapshot} (exit {proc.returncode}): {proc.stderr[-500:]}")
        report = json.loads(out.read_text())
    prefix = snapshot.name + "/"
    found = []
    for item in report["findings"]:
        loc = item["location"]
        path = loc["path"]
        path = path[len(prefix):] if path.startswith(prefix) else ("." if path == snapshot.name else path)
        found.append(Finding(item["code"], path, loc.get("line"), item["message"]))
    return found, wall


@dataclass
class RepoResult:
    """Numbers for one repository."""

    repo: str
    debt: int = 0
    found: int = 0
    findings: int = 0
    verdicts: Counter = field(default_factory=Counter)
    code_findings: int = 0
    code_wrong: int = 0
    missed: list[str] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo, "debt": self.debt, "found": self.found,
            "recall": _ratio(self.found, self.debt), "findings": self.findings,
            "right": self.verdicts["right"], "wrong": self.verdicts["wrong"],
            "debatable": self.verdicts["debatable"], "unjudged": self.verdicts["unjudged"],
            "wrong_rate": _ratio(self.verdicts["wrong"], self.findings),
            "code_rule_findings": self.code_findings, "code_rule_wrong": self.code_wrong,
            "code_rule_wrong_rate": _ratio(self.code_wrong, self.code_findings),
            "missed": self.missed, "unjudged_examples": self.unjudged[:20],
            "scan_wall_s": round(self.wall_s, 2),
        }  # fmt: skip


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def evaluate(entry: dict[str, Any], findings: list[Finding], wall: float) -> RepoResult:
    """Match one repository's findings against its labels."""
    res = RepoResult(entry["repo"], wall_s=wall)
    for debt in entry.get("debt", []):
        res.debt += 1
        if any(matches(debt, f) for f in findings):
            res.found += 1
        else:
            res.missed.append(debt["id"])
    judged = entry.get("judged", [])
    for f in findings:
        verdict = next((j["verdict"] for j in judged if matches(j, f)), "unjudged")
        res.findings += 1
        res.verdicts[verdict] += 1
        if not f.code.startswith(CONFIG_FAMILIES):
            res.code_findings += 1
            res.code_wrong += verdict == "wrong"
        if verdict == "unjudged":
            res.unjudged.append(f"{f.code} {f.path}:{f.line or ''} {f.message[:100]}")
    return res


def _row(name: str, r: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "  n/a" if x is None else f"{100 * x:4.0f}%"

    return (f"{name:42} {r['found']:>3}/{r['debt']:<3} {pct(r['recall'])}  {r['findings']:>5} "
            f"{r['wrong']:>5} {pct(r['wrong_rate'])}  {r['debatable']:>5} {r['unjudged']:>5}  "
            f"{pct(r['code_rule_wrong_rate'])} of {r['code_rule_findings']}")


def run(_shared: Path | None = None, wanted: Iterable[str] = ()) -> dict[str, Any]:
    """The `repos` part of `make realworld`: scan, print the table, return the totals.
    (The shared corpus is not used: the snapshots live apart, see snapshot_root.)"""
    return measure(list(wanted))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--labels"] and len(argv) >= 2:
        if argv[1] != "heldout":
            print(f"repos: unknown label set {argv[1]!r}; known: dev (default), heldout")
            return 2
        measure(argv[2:], HELDOUT_LABELS, HELDOUT_RESULTS)
        return 0
    measure(argv)
    return 0


def measure(argv: list[str], labels_path: Path = LABELS, results_path: Path = RESULTS) -> dict[str, Any]:
    """Scan every snapshot present (or the named repositories) that `labels_path` labels,
    print the numbers and write them to `results_path`."""
    if not labels_path.is_file():
        print(f"repos: skipped - no label file {labels_path.name}")
        return {"skipped": [labels_path.name]}
    labels = yaml.safe_load(labels_path.read_text())
    root = snapshot_root()
    wanted = set(argv)
    results: list[RepoResult] = []
    skipped: list[str] = []
    for entry in labels["repos"]:
        name = entry["repo"].replace("/", "__")
        if wanted and entry["repo"] not in wanted and name not in wanted:
            continue
        snap = root / name if root else None
        if snap is None or not snap.is_dir():
            print(f"skip {entry['repo']}: no snapshot at {snap or '$MLAUDIT_REALREPOS/' + name} "
                  f"(git clone https://github.com/{entry['repo']} {name} && "
                  f"git -C {name} checkout {entry['commit']})")
            skipped.append(entry["repo"])
            continue
        findings, wall = scan(snap)
        results.append(evaluate(entry, findings, wall))
    if not results:
        print("repos: skipped - no repository snapshot found (see benchmarks/realworld/repos.yaml "
              "for where they go and how to recreate them)")
        return {"skipped": skipped}
    rows = [r.as_dict() for r in results]
    total = RepoResult("TOTAL")
    for r in results:
        total.debt += r.debt
        total.found += r.found
        total.findings += r.findings
        total.verdicts.update(r.verdicts)
        total.code_findings += r.code_findings
        total.code_wrong += r.code_wrong
        total.wall_s += r.wall_s
    total_row = total.as_dict()
    print(f"{'repository':42} {'found':>7} {'recall':>5}  {'finds':>5} {'wrong':>5} {'rate':>5}  "
          f"{'debat':>5} {'unjud':>5}  code/repo rules wrong")
    for row in rows:
        print(_row(row["repo"], row))
    print(_row("TOTAL", total_row))
    for row in rows:
        if row["missed"]:
            print(f"  missed in {row['repo']}: {', '.join(row['missed'])}")
        for u in row["unjudged_examples"][:5]:
            print(f"  unjudged in {row['repo']}: {u}")
    results_path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "realworld-repos", "labels": labels_path.name,
           "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "snapshots": str(root), "skipped": skipped,
           "total": total_row, "repos": rows}
    tmp = results_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(results_path)
    print(f"-> {results_path}")
    return {"total": total_row, "skipped": skipped}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
