"""ACME001: the confidential marker in a documentation file."""

from __future__ import annotations

from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.repo import ProjectSnapshot
from mlaudit.model import Finding, Location


@rule("ACME001", needs="project")
def confidential_marker(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    marker = ctx.params.marker
    for f in project.of_kind("docs"):
        for number, line in enumerate(project.text(f).splitlines(), start=1):
            if marker in line:
                yield ctx.finding(f"documentation carries the marker {marker!r}", Location(f.rel, number),
                                  evidence={"marker": marker})
                break
