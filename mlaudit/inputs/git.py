"""Git facts about the scan root, read by running `git` (never a library, never the network).

Two project-scope input kinds, so a scan pays only for what its rules need:
- `git`: the files git tracks under the scan root, with their blob size and LFS attribute;
- `git-history`: every blob reachable from any ref under the scan root, with its size.

Both are None when the scan root is not inside a git work tree, or is a folder that the
enclosing repository ignores (a generated fixture inside another checkout is not versioned
by it). Only paths under the scan root are reported, relative to it. The commands are
read-only; `core.fsmonitor` is forced off because a repository's own config could
otherwise make `git ls-files` run a program; lazy fetching of missing objects is disabled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlaudit.inputs import InputError, input_kind

TIMEOUT_S = 30.0
HISTORY_TIMEOUT_S = 120.0
# Bound on objects read from `git rev-list --objects --all`; beyond it the history scan is
# reported as inconclusive (MLA002) rather than silently partial.
MAX_HISTORY_OBJECTS = 2_000_000
# Environment that could point git at another repository or make it prompt or fetch.
_DROP_ENV = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_EXTERNAL_DIFF", "GIT_PAGER",
)  # fmt: skip


@dataclass(frozen=True)
class TrackedFile:
    """A file in git's index under the scan root."""

    rel: str  # relative to the scan root, POSIX
    blob: str  # object id of the staged content
    size: int  # size of the staged blob in bytes (an LFS pointer is ~130 bytes)
    lfs: bool  # .gitattributes gives it filter=lfs


@dataclass(frozen=True)
class GitTree:
    """The git work tree around the scan root, restricted to paths under the root."""

    toplevel: Path
    prefix: str  # the scan root inside the repository, '' or 'sub/dir/'
    tracked: tuple[TrackedFile, ...]
    # tracked files that a .gitignore (or info/exclude) lists: committed before or despite it
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryBlob:
    """One blob somewhere in the history of any ref, at a path under the scan root."""

    rel: str
    blob: str
    size: int


@dataclass(frozen=True)
class GitHistory:
    """Every distinct (path, blob) pair reachable from any ref, under the scan root."""

    prefix: str
    blobs: tuple[HistoryBlob, ...]
    objects_read: int


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_NO_LAZY_FETCH="1", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return env


def run_git(args: list[str], cwd: Path, stdin: bytes | None = None, timeout: float = TIMEOUT_S) -> bytes:
    """stdout of a read-only git command; InputError on timeout or failure."""
    import subprocess  # local: scans without git rules never spawn anything

    cmd = ["git", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        raise InputError(".", f"`git {args[0]}` took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(".", f"`git {args[0]}` failed: {err[-1] if err else proc.returncode}")
    return proc.stdout


def _locate(root: Path) -> tuple[Path, str] | None:
    """(toplevel, prefix) of the work tree holding `root`, or None when there is none."""
    if not any((d / ".git").exists() for d in (root, *root.parents)):
        return None  # no repository anywhere above: spare the subprocess
    import subprocess

    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree", "--show-toplevel", "--show-prefix"],
            cwd=root, capture_output=True, timeout=TIMEOUT_S, env=_env(),
        )  # fmt: skip
    except FileNotFoundError:
        raise InputError(".", "looks like a git repository but no `git` executable was found") from None
    except subprocess.TimeoutExpired:
        raise InputError(".", f"`git rev-parse` took longer than {TIMEOUT_S:.0f} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "dubious ownership" in err:
            raise InputError(
                ".", "git refuses to read this repository (dubious ownership; see safe.directory)"
            )
        return None  # not a git work tree
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) < 2 or lines[0].strip() != "true":
        return None  # inside a .git directory
    prefix = lines[2].strip() if len(lines) > 2 else ""
    if prefix:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--", "."],
            cwd=root,
            capture_output=True,
            timeout=TIMEOUT_S,
            env=_env(),
        )
        if ignored.returncode == 0:
            return None  # the enclosing repository ignores this folder: not versioned by it
    return Path(lines[1].strip()), prefix


def _object_sizes(root: Path, ids: list[str]) -> dict[str, tuple[str, int]]:
    """object id -> (type, size) via one `git cat-file --batch-check` call."""
    if not ids:
        return {}
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        root,
        stdin="\n".join(ids).encode() + b"\n",
        timeout=HISTORY_TIMEOUT_S,
    )
    sizes = {}
    for line in out.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            sizes[parts[0]] = (parts[1], int(parts[2]))
    return sizes


@input_kind("git-location", scope="project")
def load_git_location(session, _file) -> tuple[Path, str] | None:
    """(toplevel, prefix of the scan root) once per scan, shared by the other git inputs."""
    if session.single_file:
        return None
    return _locate(Path(session.root).resolve())


@input_kind("git", scope="project")
def load_git(session, _file) -> GitTree | None:
    """Tracked files under the scan root with blob sizes and LFS attributes."""
    root = Path(session.root).resolve()
    located = session.get("git-location")
    if located is None:
        return None
    toplevel, prefix = located
    entries: list[tuple[str, str]] = []
    for record in run_git(["ls-files", "-z", "-s", "--", "."], root).split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, blob, _stage = meta.decode().split(" ")
        if mode != "160000":  # submodules are commits of another repository
            entries.append((path.decode("utf-8", "replace"), blob))
    lfs: set[str] = set()
    if entries:
        out = run_git(
            ["check-attr", "-z", "--stdin", "filter"],
            root,
            stdin=b"\0".join(p.encode() for p, _ in entries) + b"\0",
        )
        fields = out.split(b"\0")
        for i in range(0, len(fields) - 2, 3):
            if fields[i + 2] == b"lfs":
                lfs.add(fields[i].decode("utf-8", "replace"))
    sizes = _object_sizes(root, sorted({b for _, b in entries}))
    tracked = tuple(
        TrackedFile(rel=p, blob=b, size=sizes.get(b, ("", -1))[1], lfs=p in lfs) for p, b in entries
    )
    ignored = tuple(sorted(tracked_ignored(root)))
    return GitTree(toplevel=toplevel, prefix=prefix, tracked=tracked, ignored=ignored)


def tracked_ignored(root: Path) -> set[str]:
    """Paths under `root` (relative to it) that git tracks although an ignore rule lists them;
    empty outside a git work tree or when git fails (the walk then simply honours .gitignore)."""
    if not any((d / ".git").exists() for d in (root, *root.parents)):
        return set()
    try:
        out = run_git(["ls-files", "-z", "-c", "-i", "--exclude-standard", "--", "."], root)
    except (InputError, OSError):
        return set()
    return {p.decode("utf-8", "replace") for p in out.split(b"\0") if p}


@input_kind("git-history", scope="project")
def load_git_history(session, _file) -> GitHistory | None:
    """Every blob in the history of every ref whose path lies under the scan root."""
    root = Path(session.root).resolve()
    located = session.get("git-location")
    if located is None:
        return None
    _toplevel, prefix = located
    out = run_git(["rev-list", "--objects", "--all", "--missing=allow-any"], root, timeout=HISTORY_TIMEOUT_S)
    lines = out.split(b"\n")
    if len(lines) > MAX_HISTORY_OBJECTS:
        raise InputError(
            ".",
            f"git history has {len(lines)} objects, more than the "
            f"{MAX_HISTORY_OBJECTS} mlaudit reads; history was not scanned",
        )
    pairs: set[tuple[str, str]] = set()
    for line in lines:
        oid, sep, path = line.partition(b" ")
        if not sep or not path:
            continue  # commits and the root tree carry no path
        text = path.decode("utf-8", "replace")
        if text.startswith(prefix):
            pairs.add((text[len(prefix) :], oid.decode()))
    sizes = _object_sizes(root, sorted({oid for _, oid in pairs}))
    blobs = tuple(
        HistoryBlob(rel=p, blob=oid, size=sizes[oid][1])
        for p, oid in sorted(pairs)
        if oid in sizes and sizes[oid][0] == "blob"
    )
    return GitHistory(prefix=prefix, blobs=blobs, objects_read=len(lines))


@dataclass(frozen=True)
class VersionedFiles:
    """Files that are (or, outside git, would be) versioned: path relative to the root -> size.

    In a git work tree: what git tracks (`source='git'`, sizes of the committed blobs).
    Elsewhere: what the walk found, which already leaves out .gitignore'd paths
    (`source='walk'`), i.e. what a `git add .` would commit."""

    source: str
    sizes: dict[str, int]


@input_kind("versioned", scope="project")
def load_versioned(session, _file) -> VersionedFiles | None:
    """Tracked files when the root is in git, else the walked (not git-ignored) files."""
    if session.single_file:
        return None
    tree = session.get("git")
    if tree is not None:
        return VersionedFiles("git", {t.rel: max(t.size, 0) for t in tree.tracked})
    return VersionedFiles("walk", {f.rel: f.size for f in session.files})
