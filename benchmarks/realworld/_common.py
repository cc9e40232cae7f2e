"""Shared by the real-world parts: where the corpus is, one mlaudit CLI scan captured as JSON,
and matching printed findings against labels written in our own words."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"


def shared_root() -> Path | None:
    """`../shared/realworld` beside the checkout (where CI puts it), or None."""
    path = REPO.parent / "shared" / "realworld"
    return path if path.is_dir() else None


@dataclass
class Scan:
    """One `mlaudit scan` run: exit code, the JSON report (None when none was written),
    and the traceback text when the CLI raised instead of answering."""

    rc: int
    report: dict[str, Any] | None
    traceback: str | None = None
    stderr: str = ""

    def findings_on(self, path: str) -> list[dict[str, Any]]:
        if not self.report:
            return []
        return [f for f in self.report["findings"] if f["location"]["path"] == path]


def scan(target: str, cwd: Path, extra: Iterable[str] = ()) -> Scan:
    """Run the mlaudit CLI in-process on `target` (relative to `cwd`), JSON written to a temp
    file; stdout is swallowed. Settings files are ignored so the corpus is read as shipped."""
    from mlaudit.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        argv = ["scan", target, "--isolated", "-q", "--output", f"json={out}", *extra]
        err = io.StringIO()
        here = Path.cwd()
        tb = None
        try:
            os.chdir(cwd)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                rc = main(argv)
        except SystemExit as exc:  # typer may exit instead of returning
            rc = exc.code if isinstance(exc.code, int) else 2
        except Exception:  # a traceback is a result to report, not a reason to stop
            rc, tb = -1, traceback.format_exc()
        finally:
            os.chdir(here)
        report = json.loads(out.read_text()) if out.exists() else None
    text = err.getvalue()
    if tb is None and "Traceback (most recent call last)" in text:
        tb = text
    return Scan(rc=rc, report=report, traceback=tb, stderr=text)


@dataclass
class Label:
    """One labelled fact: debt to find, or a finding we accept as true though not debt."""

    key: str | None
    line: int | None
    why: str
    rules: tuple[str, ...] = ()

    def matches(self, finding: Mapping[str, Any]) -> bool:
        if self.rules and finding["code"] not in self.rules:
            return False
        loc = finding["location"]
        return bool((self.line is not None and loc.get("line") == self.line)
                    or (self.key is not None and loc.get("pointer") == self.key))


def labels(entries: Iterable[Mapping[str, Any]] | None) -> list[Label]:
    out = []
    for e in entries or ():
        rules = e.get("rules") or ([e["rule"]] if e.get("rule") else [])
        out.append(Label(key=e.get("key"), line=e.get("line"), why=str(e.get("why", "")).strip(),
                         rules=tuple(rules)))
    return out


@dataclass
class Judged:
    """Findings on one file sorted against its labels."""

    found: list[Label] = field(default_factory=list)
    missed: list[Label] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    wrong: list[dict[str, Any]] = field(default_factory=list)
    printed: int = 0


def dedupe(findings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (code, line, pointer): the same fact printed by two scan modes counts once."""
    seen: dict[tuple, dict[str, Any]] = {}
    for f in findings:
        loc = f["location"]
        seen.setdefault((f["code"], loc.get("line"), loc.get("pointer")), dict(f))
    return list(seen.values())


def judge(findings: list[dict[str, Any]], debt: list[Label], acceptable: list[Label]) -> Judged:
    """Each debt label is found when some finding matches it; a finding matching no debt and
    no acceptable label is wrong."""
    out = Judged(printed=len(findings))
    used: set[int] = set()
    for label in debt:
        hits = [i for i, f in enumerate(findings) if label.matches(f)]
        (out.found if hits else out.missed).append(label)
        used.update(hits)
    for i, f in enumerate(findings):
        if i in used:
            continue
        if any(a.matches(f) for a in acceptable):
            out.accepted.append(f)
        else:
            out.wrong.append(f)
    return out


def short(finding: Mapping[str, Any]) -> str:
    loc = finding["location"]
    where = f"{loc.get('line')}:" if loc.get("line") else ""
    where += loc.get("pointer") or ""
    return f"{finding['code']} {where} {finding['message']}"[:160]


def pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None
