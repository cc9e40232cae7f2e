"""The scan side of `mlaudit fix`: the rules that have a fixer run on the input (their
findings, with the fix arguments they carry, are what the planner reads) and again on the
fixed output (the report lists the findings the fix removed and any it introduced).

Engine layer: the fixers never import the engine, so the CLI hands `scan_for_fixes` to the
fix runner as its scanner.
"""

from __future__ import annotations

from pathlib import Path

from mlaudit.catalog import load_catalog
from mlaudit.checks.registry import implementations
from mlaudit.engine import ScanAbort, scan
from mlaudit.fixers import FixError
from mlaudit.inputs.session import ScanOptions
from mlaudit.model import Finding

# Running `fix` says the output is for inference: any optimizer or scheduler state is worth
# stripping there, not only where it dominates an unmarked checkpoint (MLC004 heavy-share).
FIX_INTENT_PARAMS = {"MLC004": {"heavy-share": 0.0}}


def fixable_codes() -> tuple[str, ...]:
    """Codes of the implemented rules whose YAML names a fixer, sorted. Unsafe ones too: the
    planner leaves their fixes out without --unsafe-fixes but says they are there."""
    catalog = load_catalog()
    wanted = [code for code, meta in catalog.items() if meta.fix is not None]
    impls = implementations(wanted)
    return tuple(sorted(c for c in wanted if c in impls))


def scan_for_fixes(path: Path) -> list[Finding]:
    """The fixable rules' findings on one file (no settings file, no suppressions: the fix
    acts on what the file holds). An unreadable file is a FixError (one line, exit 2)."""
    options = ScanOptions(
        codes=fixable_codes(),
        params=FIX_INTENT_PARAMS,
        respect_gitignore=False,
        ignore_suppressions=True,
        jobs=1,
    )
    try:
        report = scan([path], options)
    except ScanAbort as err:
        raise FixError(str(err)) from None
    return [f for f in report.findings if f.fix is not None]
