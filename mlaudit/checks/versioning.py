"""MLV: versioning and artifacts. Pure checks over git facts (rules/versioning.yaml)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import PurePosixPath

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs import InputError
from mlaudit.inputs.git import GitHistory, GitTree, VersionedFiles
from mlaudit.inputs.repo import ProjectSnapshot
from mlaudit.model import Finding, Location
from mlaudit.units import format_bytes

# The Git LFS specification caps pointer files below 1024 bytes.
LFS_POINTER_MAX = 1024


def _matches(rel: str, patterns: list[str]) -> bool:
    name = rel.rpartition("/")[2].lower()
    return any(fnmatch.fnmatch(name, p.lower()) for p in patterns)


@rule("MLV001", needs="git")
def artifact_without_lfs(tree: GitTree, ctx: RuleContext) -> Iterator[Finding]:
    """Model artifacts committed as plain git blobs instead of LFS pointers."""
    patterns = list(ctx.params.patterns)
    min_bytes = ctx.params.min_kb * 1024
    for t in sorted(tree.tracked, key=lambda t: t.rel):
        if not _matches(t.rel, patterns) or t.size < max(min_bytes, 0) or t.size == 0:
            continue  # an empty placeholder file adds nothing to the history
        if not t.lfs:
            yield ctx.finding(
                f"model artifact tracked by git without LFS: its {format_bytes(t.size)} blob goes into every "
                "clone's history (no filter=lfs attribute in .gitattributes)",
                Location(t.rel),
                evidence={"blob_bytes": t.size, "lfs_attribute": False},
            )
        elif t.size >= LFS_POINTER_MAX:
            yield ctx.finding(
                f"marked filter=lfs in .gitattributes, but the committed blob is "
                f"{format_bytes(t.size)}, not an "
                f"LFS pointer (< {LFS_POINTER_MAX} B): it was committed before LFS was set up "
                "or without git-lfs",
                Location(t.rel),
                evidence={"blob_bytes": t.size, "lfs_attribute": True},
            )


@rule("MLV002", needs="git-history")
def large_file_in_history(history: GitHistory, ctx: RuleContext) -> Iterator[Finding]:
    """Blobs above `max-mb` anywhere in the history of any ref."""
    limit = int(ctx.params.max_mb * 1024 * 1024)
    per_path: dict[str, list[int]] = {}
    for b in history.blobs:
        if b.size > limit:
            per_path.setdefault(b.rel, []).append(b.size)
    for rel, sizes in sorted(per_path.items()):
        yield ctx.finding(
            f"{len(sizes)} version(s) in git history exceed {format_bytes(limit)} "
            f"(largest {format_bytes(max(sizes))}); "
            "every clone downloads them even if the file was deleted since",
            Location(rel),
            evidence={"versions": len(sizes), "largest_bytes": max(sizes), "threshold_bytes": limit},
        )


def _run_output_root(rel: str, dirs: set[str], patterns: list[str]) -> str | None:
    """The run-output folder a file belongs to (its top-most wandb/, mlruns/ ... ancestor),
    or its own folder for a loose event file; None when it is no run output."""
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.lower() in dirs:
            return "/".join(parts[: i + 1])
    if _matches(rel, patterns):
        return "/".join(parts[:-1]) or "."
    return None


@rule("MLV003", needs="versioned")
def run_outputs_committed(files: VersionedFiles, ctx: RuleContext) -> Iterator[Finding]:
    """Experiment-tracker and logger output (wandb/, mlruns/, lightning_logs/, tfevents) versioned."""
    dirs = {d.lower().strip("/") for d in ctx.params.dirs}
    patterns = list(ctx.params.patterns)
    groups: dict[str, list[int]] = {}
    for rel, size in files.sizes.items():
        root = _run_output_root(rel, dirs, patterns)
        if root is not None:
            groups.setdefault(root, []).append(size)
    how = "tracked by git" if files.source == "git" else "in the project and not git-ignored"
    for root, sizes in sorted(groups.items()):
        yield ctx.finding(
            f"run outputs {how}: {len(sizes)} file(s), {format_bytes(sum(sizes))} under {root}/",
            Location(root),
            evidence={"files": len(sizes), "bytes": sum(sizes), "source": files.source},
        )


@rule("MLV004", needs="git")
def ignored_file_committed(tree: GitTree, ctx: RuleContext) -> Iterator[Finding]:
    """Files git tracks although .gitignore lists them, one finding per folder."""
    groups: dict[str, list[str]] = {}
    for rel in tree.ignored:
        groups.setdefault(str(PurePosixPath(rel).parent), []).append(rel)
    sizes = {t.rel: t.size for t in tree.tracked}
    for folder, rels in sorted(groups.items()):
        total = sum(max(sizes.get(r, 0), 0) for r in rels)
        shown = ", ".join(PurePosixPath(r).name for r in rels[:3]) + (", ..." if len(rels) > 3 else "")
        yield ctx.finding(
            f"{len(rels)} file(s) ({format_bytes(total)}) tracked by git although .gitignore lists them: "
            f"{shown}",
            Location(rels[0] if len(rels) == 1 else folder),
            evidence={"files": len(rels), "bytes": total},
            fix_hint=f"git rm -r --cached -- {' '.join(ctx.shell_path(r) for r in rels[:20])}",
        )


@rule("MLV005", needs="project")
def notebook_with_outputs(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Notebooks committed with their cell outputs."""
    for f in project.of_kind("notebook"):
        try:
            doc = json.loads(project.text(f, limit=64 * 1024 * 1024))
        except (InputError, ValueError):
            continue  # unreadable notebooks are the notebook reader's MLA002
        cells = doc.get("cells") if isinstance(doc, dict) else None
        if cells is None and isinstance(doc, dict):  # nbformat 3
            cells = [c for ws in doc.get("worksheets") or [] for c in ws.get("cells") or []]
        with_out = [c for c in cells or [] if isinstance(c, dict) and c.get("outputs")]
        if not with_out:
            continue
        size = sum(len(json.dumps(c["outputs"])) for c in with_out)
        yield ctx.finding(
            f"notebook committed with outputs: {len(with_out)} cell(s), about {format_bytes(size)} of output "
            "in every diff and clone (images, tracebacks, local paths)",
            Location(f.rel),
            evidence={"cells_with_outputs": len(with_out), "output_bytes": size},
            fix_hint=f"jupyter nbconvert --clear-output --inplace {ctx.shell_path(f.rel)}",
        )
