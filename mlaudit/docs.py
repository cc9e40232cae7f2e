"""Renders rule documentation from its metadata: one text for the CLI, SARIF and the docs."""

from __future__ import annotations

from mlaudit.catalog import family_title
from mlaudit.model import RuleMeta


def rule_markdown(meta: RuleMeta) -> str:
    """Markdown documentation of one rule (used by `mlaudit rule` and SARIF `help`)."""
    parts = [
        f"# {meta.code} {meta.name}",
        f"{meta.summary}",
        f"Family: {meta.family} ({family_title(meta.family)}) · default severity: "
        f"{meta.severity.value} · status: {meta.status}",
    ]
    for title, body in (("What it does", meta.what), ("Why is this bad?", meta.why)):
        if body:
            parts += [f"## {title}", body]
    if meta.example:
        parts += ["## Example", f"```\n{meta.example}\n```"]
    if meta.instead:
        parts += ["## Instead", f"```\n{meta.instead}\n```"]
    if meta.params:
        rows = "\n".join(
            f"- `{p.name}` ({p.type}, default `{p.default!r}`): {p.doc}" for p in meta.params.values()
        )
        parts += ["## Parameters", rows]
    if meta.requires:
        parts += ["## Requires", f"{', '.join(meta.requires)}, which the core install leaves out: "
                  "`pip install 'mlaudit[fix]'`. Runs only with `--run-model` (it imports the "
                  "project's model class)."]
    if meta.fix:
        parts += ["## Fix", f"`mlaudit fix --apply {meta.fix.fixer}` ({meta.fix.applicability})"]
    if meta.sources:
        parts += ["## Sources", "\n".join(f"- {s}" for s in meta.sources)]
    return "\n\n".join(parts) + "\n"
