"""What a check gets besides its input: its metadata, resolved params, a finding factory."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlaudit.model import Finding, FixArgs, Location, RuleMeta, Severity, fingerprint
from mlaudit.params import RuleParams


@dataclass(frozen=True)
class RuleContext:
    """Per-rule context; `finding()` fills code, name, severity and fingerprint."""

    meta: RuleMeta
    params: RuleParams
    severity: Severity
    # Turns root-relative paths (what checks know) into the paths users see.
    prefix: str = ""
    # Turns the same paths into paths relative to the project root (the git top level, or the
    # scanned directory) for fingerprints, which must not depend on the working directory.
    project_prefix: str = ""
    # The scan root as a path from the working directory ("" when it is the working
    # directory), so that paths in fix hints run as written from where mlaudit was started.
    cwd_prefix: str = ""

    def project_path(self, path: str) -> str:
        """`path` (as given to `finding`) relative to the project root, normalized."""
        return posixpath.normpath(posixpath.join(self.project_prefix or ".", path))

    def shell_path(self, path: str) -> str:
        """A root-relative `path` as a shell argument that works from the working directory."""
        return shlex.quote(posixpath.normpath(posixpath.join(self.cwd_prefix or ".", path)))

    def fix_command(self, path: str, fixes: str) -> str:
        """The `mlaudit fix` command line for a root-relative checkpoint `path`, runnable as
        written from the working directory mlaudit was started in."""
        return f"mlaudit fix {self.shell_path(path)} --apply {fixes}"

    # "path: reason" lines for inputs the rule could not judge (history too short...), shown with -v
    skips: list[str] = field(default_factory=list, compare=False)

    def skip(self, location: Location, reason: str) -> None:
        """Record that the rule looked at `location` and could not judge it (printed with -v)."""
        path = self.prefix + location.path if self.prefix else location.path
        self.skips.append(f"{self.meta.code} {path}: {reason}")

    def finding(
        self,
        message: str,
        location: Location,
        *,
        evidence: Mapping[str, Any] | None = None,
        fix_hint: str | None = None,
        key: str = "",
        fix_args: Mapping[str, str | tuple[str, ...]] | None = None,
    ) -> Finding:
        """Build a finding for this rule. `location.path` is relative to the scan root.

        `key` tells apart several findings that share a location (it enters the
        fingerprint; line numbers never do). `fix_args` locate the problem for the rule's
        fixer (`mlaudit fix` plans from them); a fixable rule's finding always carries its fix."""
        stable = fingerprint(self.meta.code, self.project_path(location.path), location.pointer, key)
        if self.prefix:
            # "." (the project itself) under a prefix reads as the folder, not "dir/."
            path = self.prefix.rstrip("/") if location.path == "." else self.prefix + location.path
            location = replace(location, path=path)
        return Finding(
            code=self.meta.code,
            name=self.meta.name,
            severity=self.severity,
            message=message,
            location=location,
            fix_hint=fix_hint,
            evidence=dict(evidence or {}),
            fingerprint=stable,
            fixable=self.meta.fixable,
            fix=(FixArgs(self.meta.fix.fixer, self.meta.fix.applicability, dict(fix_args or {}))
                 if self.meta.fix is not None else None),
        )
