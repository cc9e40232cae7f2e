"""Fix hints and rule metadata must name real `mlaudit fix` options and fixers: the checks and
the fixers are developed apart, and a hint that names a missing flag sends users nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlaudit.catalog import load_catalog
from mlaudit.fixers import all_fixers

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "mlaudit" / "checks").glob("*.py")) + sorted((ROOT / "rules").glob("*.yaml"))
FIX_CALL = re.compile(r"mlaudit fix\b[^`\"\n]*")


def _fix_options(run_cli) -> set[str]:
    _, out, _ = run_cli("fix", "--help")
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", out))


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_fix_hints_name_real_options_and_fixers(path, run_cli):
    options = _fix_options(run_cli)
    fixers = set(all_fixers())
    for call in FIX_CALL.findall(path.read_text()):
        for flag in re.findall(r"(--[a-z][a-z0-9-]+)", call):
            assert flag in options, f"{path.name}: `{call}` uses unknown option {flag}"
        for names in re.findall(r"--apply[ =]([a-z0-9,-]+)", call):
            unknown = set(names.split(",")) - fixers
            assert not unknown, f"{path.name}: `{call}` names unknown fixers {sorted(unknown)}"


def test_rule_fix_metadata_names_registered_fixers():
    fixers = set(all_fixers())
    for meta in load_catalog().values():
        if meta.fix:
            assert meta.fix.fixer in fixers, f"{meta.code} names unknown fixer {meta.fix.fixer!r}"
            assert meta.fix.applicability in {"safe", "unsafe"}
            assert fixers and meta.fix.applicability == all_fixers()[meta.fix.fixer].applicability, (
                f"{meta.code}: YAML says {meta.fix.applicability}, the fixer says otherwise"
            )


# --- hints run as written from where mlaudit was started -------------------------------------

COMMANDS = ("mlaudit", "git", "jupyter")  # hints that are shell commands start with one of these


def _hinting_codes() -> list[str]:
    """Codes whose rule function passes a fix_hint (read from the check sources)."""
    import ast

    codes = []
    for path in sorted((ROOT / "mlaudit" / "checks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            deco = [d for d in node.decorator_list if isinstance(d, ast.Call)
                    and getattr(d.func, "id", "") == "rule" and d.args]
            hints = [k for k in ast.walk(node) if isinstance(k, ast.keyword) and k.arg == "fix_hint"
                     and not (isinstance(k.value, ast.Constant) and k.value.value is None)]
            if deco and hints:
                codes.append(deco[0].args[0].value)
    return codes


def _fire_cases():
    from tests.casekit import all_cases

    wanted = set(_hinting_codes())
    return [c for c in all_cases() if c.kind == "fire" and c.code in wanted]


HINT_CASES = _fire_cases()


def _scan_from(case, cwd: Path, target: str, run_cli, tmp_path: Path) -> list[dict]:
    import json

    args = case.args()
    if "--settings" in args:  # the settings file is named relative to the case directory
        i = args.index("--settings")
        args[i + 1] = str(case.directory / args[i + 1])
    out = tmp_path / "report.json"
    code, _, err = run_cli("scan", target, "--select", case.code, "--format", "json", "--output", out,
                           *args, cwd=cwd)
    assert code in (0, 1), err
    return [f for f in json.loads(out.read_text())["findings"] if f.get("fix_hint")]


def _check_hint(finding: dict, cwd: Path, options: set[str], fixers: set[str]) -> None:
    import ast
    import shlex

    hint = finding["fix_hint"]
    where = f"{finding['code']} at {finding['location']['path']}: {hint!r}"
    command = hint.split("  (", 1)[0]  # a parenthesized remark may follow two spaces
    words = shlex.split(command.split(" <", 1)[0])
    if words and words[0] in COMMANDS:
        if words[:2] == ["mlaudit", "fix"]:
            assert (cwd / words[2]).exists(), f"{where}: {words[2]} does not exist from {cwd}"
            for flag in (w for w in words if w.startswith("--")):
                assert flag in options, f"{where}: unknown option {flag}"
            chosen = words[words.index("--apply") + 1].split(",")
            assert set(chosen) <= fixers, f"{where}: unknown fixer"
        elif words[:2] == ["git", "rm"]:
            for path in words[words.index("--") + 1:]:
                assert (cwd / path).exists(), f"{where}: {path} does not exist from {cwd}"
        elif words[0] == "jupyter":
            assert (cwd / words[-1]).exists(), f"{where}: {words[-1]} does not exist from {cwd}"
    elif finding["location"]["path"].endswith((".py", ".ipynb")):
        # a code finding's hint is the corrected code itself (a statement, or the header of a
        # block such as `if seed is not None:`): it must at least be Python
        ast.parse(hint + ("\n    pass" if hint.rstrip().endswith(":") else ""))


@pytest.mark.parametrize("case", HINT_CASES, ids=[c.id for c in HINT_CASES])
def test_hints_run_as_written_from_the_working_directory(case, run_cli, tmp_path):
    """Scanned from the folder above the project and from inside it, every command in a hint
    names paths that exist from there, and every code hint is Python."""
    options, fixers = _fix_options(run_cli), set(all_fixers())
    seen = 0
    for cwd, target in ((case.directory.parent, case.directory.name), (case.directory, ".")):
        for finding in _scan_from(case, cwd, target, run_cli, tmp_path):
            _check_hint(finding, cwd, options, fixers)
            seen += 1
    assert seen, f"{case.id}: the rule passes a fix hint, but its firing case produced none"
