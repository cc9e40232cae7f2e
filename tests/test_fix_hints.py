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
