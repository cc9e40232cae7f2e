"""Baselines: record today's findings by fingerprint so a gate fails only on what is new.

A baseline file maps each fingerprint (rule code + path + pointer + key, never a line
number) to how many findings carried it. Applying it marks up to that many matching
findings as `baselined`; any excess is new and gates. Entries that now match fewer findings
than recorded are stale (debt was paid off) and `--update-baseline` prunes them, so the
baseline only ever shrinks unless rewritten on purpose with `--write-baseline`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlaudit.context import RuleContext
from mlaudit.model import Finding, Location

FORMAT_VERSION = 1
STALE_CODE = "MLA005"


class BaselineError(Exception):
    """The baseline file is missing or malformed (one line: path and reason)."""


@dataclass(frozen=True)
class BaselineEntry:
    """One fingerprint and how many findings carried it when the baseline was written."""

    fingerprint: str
    code: str
    path: str
    count: int
    pointer: str | None = None
    message: str = ""

    def display(self) -> str:
        return f"{self.code} {self.path}" + (f"#{self.pointer}" if self.pointer else "")


@dataclass(frozen=True)
class StaleEntry:
    """A baseline entry that matched fewer findings than it recorded."""

    entry: BaselineEntry
    matched: int


@dataclass(frozen=True)
class Applied:
    """Findings with `baselined` set, plus the entries that matched less than recorded."""

    findings: tuple[Finding, ...]
    stale: tuple[StaleEntry, ...]
    matched: int


def from_findings(findings: Iterable[Finding]) -> list[BaselineEntry]:
    """Baseline entries for these findings (meta findings about the baseline excluded)."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.code != STALE_CODE and f.fingerprint:
            groups[f.fingerprint].append(f)
    entries = [
        BaselineEntry(fp, fs[0].code, fs[0].location.path, len(fs), fs[0].location.pointer,
                      fs[0].message)
        for fp, fs in groups.items()
    ]
    return sorted(entries, key=lambda e: (e.path, e.code, e.pointer or "", e.fingerprint))


def dumps(entries: Sequence[BaselineEntry]) -> str:
    """The baseline file's text: stable, sorted JSON that diffs well in review."""
    doc = {
        "version": FORMAT_VERSION,
        "tool": "mlaudit",
        "comment": "Known findings, by fingerprint and count. Regenerate with "
                   "`mlaudit scan --write-baseline FILE`; prune with --update-baseline.",
        "entries": [
            {"fingerprint": e.fingerprint, "code": e.code, "path": e.path, "pointer": e.pointer,
             "count": e.count, "message": e.message}
            for e in entries
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(path: Path, entries: Sequence[BaselineEntry]) -> None:
    """Write the baseline atomically."""
    from mlaudit.fsutil import atomic_write_text

    atomic_write_text(path, dumps(entries))


def read(path: Path) -> list[BaselineEntry]:
    """Read and validate a baseline file; BaselineError names the file and the problem."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file not found (create it with --write-baseline)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BaselineError(f"{path}: not a readable baseline: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise BaselineError(f"{path}: not an mlaudit baseline (no 'entries' list)")
    if doc.get("version") != FORMAT_VERSION:
        raise BaselineError(f"{path}: unsupported baseline version {doc.get('version')!r}")
    entries = []
    for i, raw in enumerate(doc["entries"]):
        try:
            count = raw["count"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValueError("count must be a positive integer")
            entries.append(BaselineEntry(
                fingerprint=str(raw["fingerprint"]), code=str(raw["code"]), path=str(raw["path"]),
                count=count, pointer=raw.get("pointer"), message=str(raw.get("message", "")),
            ))
        except (KeyError, TypeError, ValueError) as err:
            raise BaselineError(f"{path}: entry {i} is malformed: {err}") from None
    return entries


def apply(
    findings: Sequence[Finding],
    entries: Sequence[BaselineEntry],
    in_scope: Callable[[BaselineEntry], bool] = lambda _: True,
) -> Applied:
    """Mark up to each entry's count of matching findings as baselined (in report order).

    Only entries `in_scope` (their rule ran, their file was scanned) can be stale: a scan
    of one directory or one rule family must not declare the rest of the baseline paid off.
    """
    budget: Counter[str] = Counter()
    for e in entries:
        budget[e.fingerprint] += e.count
    used: Counter[str] = Counter()
    out = []
    for f in findings:
        if used[f.fingerprint] < budget[f.fingerprint]:
            used[f.fingerprint] += 1
            out.append(replace(f, baselined=True))
        else:
            out.append(f)
    stale = []
    remaining = Counter(used)  # split matches across duplicate entries of one fingerprint
    for e in entries:
        took = min(e.count, remaining[e.fingerprint])
        remaining[e.fingerprint] -= took
        if took < e.count and in_scope(e):
            stale.append(StaleEntry(e, took))
    return Applied(tuple(out), tuple(stale), sum(used.values()))


def pruned(entries: Sequence[BaselineEntry], stale: Sequence[StaleEntry]) -> list[BaselineEntry]:
    """Entries with stale counts lowered to what still matches; zero-count entries dropped."""
    lowered = {id(s.entry): s.matched for s in stale}
    out = []
    for e in entries:
        count = lowered.get(id(e), e.count)
        if count > 0:
            out.append(replace(e, count=count))
    return out


def stale_findings(stale: Sequence[StaleEntry], baseline_path: str, ctx: RuleContext,
                   updated: bool) -> list[Finding]:
    """MLA005 findings, one per stale entry, pointing into the baseline file."""
    action = "pruned by --update-baseline" if updated else "prune it with --update-baseline"
    return [
        ctx.finding(
            f"baseline entry {s.entry.display()} matches {s.matched} finding(s) but records "
            f"{s.entry.count}: the debt was paid off; {action}",
            Location(baseline_path, pointer=s.entry.fingerprint),
            evidence={"recorded": s.entry.count, "matched": s.matched, "code": s.entry.code,
                      "path": s.entry.path},
            key=s.entry.fingerprint,
        )
        for s in stale
    ]
