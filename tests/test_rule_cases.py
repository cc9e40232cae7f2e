"""Every rule's fixture cases: `fire*` cases produce exactly the expected findings,
`pass*` cases produce none of the rule's findings."""

from __future__ import annotations

import pytest

from tests.casekit import all_cases, display, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, run_cli, tmp_path):
    code, findings = run_case(case, run_cli, tmp_path)
    own = sorted(display(f) for f in findings if f["code"] == case.code)
    if case.kind == "fire":
        assert case.expected, f"{case.id} has no .expected file next to it"
        assert own == case.expected
    else:
        assert own == [], f"{case.id} must not fire"
