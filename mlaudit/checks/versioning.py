"""MLV: versioning and artifacts. Pure checks over git facts (rules/versioning.yaml)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from pathlib import PurePosixPath

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.git import GitHistory, GitTree, VersionedFiles
from mlaudit.model import Finding, Location
from mlaudit.units import format_bytes

# The Git LFS specification caps pointer files below 1024 bytes.
LFS_POINTER_MAX = 1024


def _matches(rel: str, patterns: list[str]) -> bool:
    name = PurePosixPath(rel).name.lower()
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
