"""`--diff-base REF`: which files and lines changed since a git ref, to gate only on those.

The comparison is against the merge base of REF and HEAD (what a pull request adds, even
when the target branch moved on) and includes uncommitted and untracked files, so a local
run before committing sees the same as CI after it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlaudit.model import Finding, Report

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class GitDiffError(Exception):
    """git is missing, the directory is not a repository, or the ref is unknown."""


@dataclass(frozen=True)
class ChangedFiles:
    """Repo-relative paths changed since the base, and the added/modified lines per text file."""

    toplevel: Path
    base: str
    files: frozenset[str]
    lines: dict[str, set[int]] = field(default_factory=dict)

    def covers(self, repo_path: str, line: int | None) -> bool:
        """Whether a finding at this repo-relative path (and line, if any) is in the diff."""
        if repo_path not in self.files:
            return False
        if line is None or repo_path not in self.lines:
            return True  # file-scoped finding, or a binary/renamed file without line info
        return line in self.lines[repo_path]


def _git(args: Sequence[str], cwd: Path) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                check=False, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise GitDiffError("--diff-base needs git, which is not installed") from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["git failed"])[-1]
        raise GitDiffError(f"git {' '.join(args[:2])}: {detail}")
    return result.stdout


def parse_added_lines(diff_text: str) -> dict[str, set[int]]:
    """Lines added or changed in the new version of each file, from `git diff -U0` output."""
    lines: dict[str, set[int]] = {}
    current: str | None = None
    for raw in diff_text.splitlines():
        if raw.startswith("+++ "):
            target = raw[4:].strip()
            current = None if target == "/dev/null" else target[2:] if target.startswith("b/") else target
            if current is not None:
                lines.setdefault(current, set())
            continue
        match = _HUNK.match(raw)
        if match and current is not None:
            start, count = int(match.group(1)), int(match.group(2) or "1")
            lines[current].update(range(start, start + count))
    return lines


def changed_since(ref: str, cwd: Path) -> ChangedFiles:
    """Files (and lines) that differ between the merge base of `ref`..HEAD and the work tree."""
    toplevel = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], toplevel)
    try:
        base = _git(["merge-base", ref, "HEAD"], toplevel).strip()
    except GitDiffError:
        base = ref  # unrelated histories: compare with the ref itself
    names = _git(["diff", "--name-only", "-z", "--no-renames", base], toplevel).split("\0")
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], toplevel).split("\0")
    diff = _git(["diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", base], toplevel)
    added = parse_added_lines(diff)
    files = frozenset(n for n in (*names, *untracked) if n)
    return ChangedFiles(toplevel=toplevel, base=base, files=files, lines=added)


def repo_path(display_path: str, changes: ChangedFiles, cwd: Path) -> str | None:
    """A finding's path (relative to the working directory) as a repo-relative path, or
    None when it lies outside the repository."""
    absolute = Path(os.path.realpath(cwd / display_path))
    try:
        return absolute.relative_to(os.path.realpath(changes.toplevel)).as_posix()
    except ValueError:
        return None


def restrict(report: Report, changes: ChangedFiles, cwd: Path, keep: Sequence[str] = ()) -> Report:
    """Drop findings outside the diff (codes in `keep` always stay); say how many in a note."""
    kept: list[Finding] = []
    dropped = 0
    for f in report.findings:
        path = repo_path(f.location.path, changes, cwd)
        if f.code in keep or (path is not None and changes.covers(path, f.location.line)):
            kept.append(f)
        else:
            dropped += 1
    note = (f"--diff-base {changes.base[:12]}: {dropped} finding(s) outside the "
            f"{len(changes.files)} changed file(s) not reported")
    return replace(report, findings=tuple(kept), notes=(*report.notes, note))
