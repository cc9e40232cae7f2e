"""What a fix did to the scan: the input's fixable findings against the output's.

The output is another file (`model.pt` becomes `model.safetensors`), so fingerprints, which
include the path, never match across the two: a finding is identified by its rule code and
its pointer inside the file (a tensor name, or none for whole-file findings), counted with
multiplicity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from mlaudit.model import Finding, Severity


def _identity(f: Finding) -> tuple[str, str]:
    return f.code, f.location.pointer or ""


def _row(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity.value, "location": f.location.display(),
            "fingerprint": f.fingerprint, "message": f.message}  # fmt: skip


def findings_diff(before: Sequence[Finding], after: Sequence[Finding]) -> dict[str, list[dict[str, Any]]]:
    """`{removed, introduced, remaining}`: input findings the output no longer has, output
    findings the input did not have, and output findings that were there before."""
    left = Counter(_identity(f) for f in before)
    removed, remaining, introduced = [], [], []
    still = Counter(_identity(f) for f in after)
    for f in before:
        key = _identity(f)
        if still[key] > 0:
            still[key] -= 1
        else:
            removed.append(_row(f))
    for f in after:
        key = _identity(f)
        if left[key] > 0:
            left[key] -= 1
            remaining.append(_row(f))
        else:
            introduced.append(_row(f))
    return {"removed": removed, "introduced": introduced, "remaining": remaining}


def introduced_errors(diff: dict[str, list[dict[str, Any]]]) -> list[str]:
    """`CODE location` of every error-severity finding the fix introduced (they fail the run)."""
    errors = [r for r in diff["introduced"] if r["severity"] == Severity.ERROR.value]
    return [f"{r['code']} {r['location']}" for r in errors]
