"""Plain data model shared by every layer: findings, locations, reports, rule metadata.

Nothing here imports the engine, the inputs or torch; formats depend on this module alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How bad a finding is; ordered info < warning < error."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse a severity name, raising ValueError with the accepted names."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file relative to the scan root plus an optional pointer.

    `pointer` names a place inside the file that is not a line: a tensor name in a
    checkpoint, a dotted key path in a config, a zip member. `line` is 1-based.
    """

    path: str
    line: int | None = None
    column: int | None = None
    pointer: str | None = None

    def display(self) -> str:
        """`path[:line][#pointer]`, the form used in text output and expected-findings files."""
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
        if self.pointer:
            text += f"#{self.pointer}"
        return text


@dataclass(frozen=True)
class FixArgs:
    """The fix a finding carries: the fixer named by its rule's YAML (`fix.fixer`) and the
    structured arguments that say where the problem is (a state key, a prefix, tensor names).

    Values are strings or tuples of strings; keys that name a field of the fixer's config
    become that config's options, the others are shown in the plan as its targets."""

    fixer: str
    applicability: str  # safe | unsafe
    args: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One problem found by one rule, with the numbers that prove it."""

    code: str
    name: str
    severity: Severity
    message: str
    location: Location
    fix_hint: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    fixable: bool = False
    fix: FixArgs | None = None  # set for rules with a fixer (their YAML `fix:`)
    # Set by post-processing (baselines) rather than by rules.
    baselined: bool = False

    def sort_key(self) -> tuple:
        loc = self.location
        return (loc.path, loc.line or 0, loc.pointer or "", self.code, self.message)


def fingerprint(code: str, path: str, pointer: str | None, key: str = "") -> str:
    """Stable content fingerprint: rule code + relative path + pointer + identity key.

    Line numbers are deliberately left out so baselines survive unrelated edits; `key`
    distinguishes several findings of one rule at the same pointer (for example the
    name of a missing section).
    """
    payload = json.dumps([code, path.replace("\\", "/"), pointer or "", key])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ParamSpec:
    """A tunable rule parameter as declared in rules/*.yaml."""

    name: str
    type: str  # int | float | bool | str | list[str]
    default: Any
    doc: str = ""


@dataclass(frozen=True)
class FixSpec:
    """Which fixer remedies a rule and whether the fix is numerically lossless."""

    fixer: str
    applicability: str  # safe | unsafe


@dataclass(frozen=True)
class RuleMeta:
    """Everything known about a rule, rendered from its YAML entry."""

    code: str
    name: str
    family: str
    summary: str
    severity: Severity
    status: str = "stable"
    what: str = ""
    why: str = ""
    example: str = ""
    instead: str = ""
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    fix: FixSpec | None = None
    sources: tuple[str, ...] = ()
    tested_by: str | None = None
    # "mlaudit" for built-in rules; "<distribution> (<entry point>)" for a plugin's
    origin: str = "mlaudit"
    # Packages beyond the core install the rule cannot run without (e.g. "torch"); such a
    # rule also needs `--run-model`. Shown by `mlaudit rule CODE`.
    requires: tuple[str, ...] = ()

    @property
    def fixable(self) -> bool:
        return self.fix is not None


@dataclass(frozen=True)
class ArtifactSummary:
    """What the scan learned about one input it read (a checkpoint's format, counts...)."""

    path: str
    kind: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """The result of one scan: findings plus what was scanned and how long it took."""

    tool_version: str
    roots: tuple[str, ...]
    findings: tuple[Finding, ...]
    files_scanned: int
    duration_s: float
    rules_run: tuple[str, ...] = ()
    artifacts: tuple[ArtifactSummary, ...] = ()
    suppressed: int = 0
    notes: tuple[str, ...] = ()
    # inputs a rule looked at but could not judge ("MLH001 path: not judged: ..."), shown with -v
    skipped: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Findings per severity (baselined ones excluded)."""
        counts = {s.value: 0 for s in Severity}
        for f in self.findings:
            if not f.baselined:
                counts[f.severity.value] += 1
        return counts

    def gating(self, fail_on: Severity) -> list[Finding]:
        """Findings at or above `fail_on` that are not covered by a baseline."""
        return [f for f in self.findings if not f.baselined and f.severity.rank >= fail_on.rank]


class RegistryError(Exception):
    """The registered implementations disagree with their tables or the rule catalog (a rule
    with no implementation, an implementation with no catalog entry, a module that does not
    register what its table entry promises). A bug in mlaudit or a plugin, never in user input."""
