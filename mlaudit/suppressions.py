"""Per-file-ignores bookkeeping: which entry suppressed a finding, and meta findings about
the entries themselves (unused ones, and ones lacking a required reason).

Binary files cannot carry `# noqa` comments, so path globs in the config are how a team
suppresses findings on checkpoints; these meta rules keep such suppressions honest.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Mapping

from mlaudit.context import RuleContext
from mlaudit.model import Finding, Location

UNUSED_IGNORE = "MLA004"
MISSING_REASON = "MLA006"


def _covers(selectors: Collection[str], code: str) -> bool:
    return any(s == "ALL" or code.startswith(s) for s in selectors)


def matching_ignore(
    finding: Finding, rel: str, per_file_ignores: Mapping[str, Collection[str]]
) -> str | None:
    """The first per-file-ignores glob that suppresses this finding, else None.

    `rel` is the path relative to the scan root; the displayed path is tried too, so a
    glob written from the repository root works when a subdirectory is scanned.
    """
    for glob, selectors in per_file_ignores.items():
        if fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(finding.location.path, glob):
            if _covers(selectors, finding.code):
                return glob
    return None


def suppression_findings(
    *,
    codes: Collection[str],
    per_file_ignores: Mapping[str, Collection[str]],
    reasons: Mapping[str, str | None],
    require_reason: bool,
    settings_file: str | None,
    used: Collection[str],
    context: Callable[[str], RuleContext],
) -> list[Finding]:
    """MLA004 for entries that suppressed nothing, MLA006 for entries lacking a reason.

    An entry counts as unused only if one of its codes actually ran: selecting a subset of
    rules must not make every other suppression look stale.
    """
    where = settings_file or "."
    out: list[Finding] = []
    if UNUSED_IGNORE in codes:
        ctx = context(UNUSED_IGNORE)
        for glob, selectors in per_file_ignores.items():
            ran = [c for c in codes if _covers(selectors, c)]
            if glob not in used and ran:
                out.append(ctx.finding(
                    f"per-file-ignores entry {glob!r} = {list(selectors)} suppressed 0 findings "
                    f"({len(ran)} of its rules ran); remove it",
                    Location(where, pointer=f"per-file-ignores.{glob}"),
                    evidence={"glob": glob, "codes": list(selectors), "suppressed": 0},
                    key=glob,
                ))
    if require_reason and MISSING_REASON in codes:
        ctx = context(MISSING_REASON)
        for glob, selectors in per_file_ignores.items():
            if not (reasons.get(glob) or "").strip():
                out.append(ctx.finding(
                    f"per-file-ignores entry {glob!r} = {list(selectors)} has no reason, but "
                    "require-suppression-reason is on; write it as {codes = [...], reason = \"...\"}",
                    Location(where, pointer=f"per-file-ignores.{glob}"),
                    evidence={"glob": glob, "codes": list(selectors)},
                    key=glob,
                ))
    return out
