"""What a check gets besides its input: its metadata, resolved params, a finding factory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlaudit.model import Finding, Location, RuleMeta, Severity, fingerprint


@dataclass(frozen=True)
class RuleContext:
    """Per-rule context; `finding()` fills code, name, severity and fingerprint."""

    meta: RuleMeta
    params: Mapping[str, Any]
    severity: Severity
    # Turns root-relative paths (what checks know) into the paths users see.
    prefix: str = ""

    def finding(
        self,
        message: str,
        location: Location,
        *,
        evidence: Mapping[str, Any] | None = None,
        fix_hint: str | None = None,
        key: str = "",
    ) -> Finding:
        """Build a finding for this rule. `location.path` is relative to the scan root.

        `key` tells apart several findings that share a location (it enters the
        fingerprint; line numbers never do)."""
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
            fingerprint=fingerprint(self.meta.code, location.path, location.pointer, key),
            fixable=self.meta.fixable,
        )
