"""Fixture cases: `fixtures/cases/<CODE>/{fire*,pass*}` (committed) and the same layout
under `fixtures/build/cases` (generated). See rules/README.md for the layout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE_ROOTS = (ROOT / "fixtures" / "cases", ROOT / "fixtures" / "build" / "cases")
CONFIG_NAMES = ("mlaudit.yaml", ".mlaudit.yaml", "pyproject.toml")


@dataclass(frozen=True)
class Case:
    code: str
    kind: str  # fire | pass
    directory: Path

    @property
    def id(self) -> str:
        return f"{self.code}/{self.directory.name}"

    @property
    def expected(self) -> list[str]:
        path = self.directory.with_name(self.directory.name + ".expected")
        lines = path.read_text().splitlines() if path.is_file() else []
        return sorted(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))

    def _is_config(self, name: str) -> bool:
        path = self.directory / name
        if not path.is_file():
            return False
        return name != "pyproject.toml" or "[tool.mlaudit" in path.read_text()

    def args(self) -> list[str]:
        extra = self.directory.parent / "args.txt"
        args = [ln.strip() for ln in extra.read_text().splitlines() if ln.strip()] if extra.is_file() else []
        if "--settings" not in args and "--isolated" not in args:
            own = next((n for n in CONFIG_NAMES if self._is_config(n)), None)
            args += ["--settings", own] if own else ["--isolated"]
        return args


def all_cases() -> list[Case]:
    cases = []
    for root in CASE_ROOTS:
        if not root.is_dir():
            continue
        for code_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for d in sorted(p for p in code_dir.iterdir() if p.is_dir()):
                kind = "fire" if d.name.startswith("fire") else "pass" if d.name.startswith("pass") else None
                if kind:
                    cases.append(Case(code_dir.name, kind, d))
    return cases


def run_case(case: Case, run_cli, tmp_path: Path) -> tuple[int, list[dict]]:
    """Scan the case directory with only its rule selected; returns (exit code, findings)."""
    out = tmp_path / "report.json"
    code, _, err = run_cli(
        "scan", ".", "--select", case.code, "--format", "json", "--output", out, *case.args(),
        cwd=case.directory,
    )
    assert code in (0, 1), f"scan of {case.id} failed with exit {code}: {err}"
    return code, json.loads(out.read_text())["findings"]


def display(f: dict) -> str:
    loc = f["location"]
    text = loc["path"]
    if loc["line"] is not None:
        text += f":{loc['line']}"
    if loc["pointer"]:
        text += f"#{loc['pointer']}"
    return f"{f['code']} {text}"
