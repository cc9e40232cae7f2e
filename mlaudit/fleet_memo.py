"""Whole-root memo for `--cache` (issue 15): a re-run whose inputs are all unchanged reuses the
root's outcome (findings after suppressions, artifacts, notes, skips) without loading a single
input or running a rule.

The per-file entries of `mlaudit.fleet` skip the checkpoint reads; what a re-run still paid
was everything around them: the rule pass (serial in the main process), its inputs (configs,
Python files) and the imports of ~90 rules. This memo sits one level up. Its key covers:

- every checkpoint's per-file key (SHA-256 of all its bytes, or a remote object's content id),
- the SHA-256 of every other file a rule reads (configs, code, docs, dependency files, CI files,
  notebooks, run logs); files of kind `other` (data, images) by size and mtime/ctime, since no
  rule reads their bytes,
- the git state when a git rule is selected (HEAD, the ref it names, the index's stat),
- the scan options (every field: rules, params, severities, excludes, suppressions...), the
  display prefix and working directory (paths in findings depend on them), the mlaudit version
  and a digest of mlaudit's own code and rule files (an edited rule in a development install
  must not reuse old findings).

Anything that cannot be identified (an unreadable file, a remote object without a content id)
means no memo for that root: it is scanned as usual.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from mlaudit import __version__
from mlaudit.fleet import PREFETCH_KINDS, ScanCache, scan_context
from mlaudit.fsutil import atomic_writer, file_sha256
from mlaudit.inputs.remote import remote_object
from mlaudit.inputs.repo import project_root
from mlaudit.inputs.session import ScanOptions, ScanSession
from mlaudit.model import ArtifactSummary, Finding

MEMO_FORMAT = 1
_GIT_INPUTS = frozenset({"git", "git-location", "git-history", "versioned"})


@dataclass
class RootOutcome:
    """What one scan root added to the report."""

    findings: list[Finding]
    suppressed: int
    used_ignores: set[str]
    artifacts: list[ArtifactSummary]
    notes: list[str]
    skipped: list[str]


class RootMemo:
    """The memo entry of one root in one scan context (see the module docstring)."""

    def __init__(self, cache: ScanCache, key: str) -> None:
        self.path = cache.dir / "roots" / f"{key}.memo"

    def lookup(self) -> RootOutcome | None:
        try:
            with open(self.path, "rb") as fh:
                entry = pickle.load(fh)  # noqa: S301 - mlaudit's own entries in a private directory
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            return None
        if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != MEMO_FORMAT:
            return None
        return entry[1] if isinstance(entry[1], RootOutcome) else None

    def store(self, outcome: RootOutcome) -> None:
        try:
            with atomic_writer(self.path, "wb") as fh:
                pickle.dump((MEMO_FORMAT, outcome), fh, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            pass  # a full or read-only cache costs a full scan next time, never this scan


@cache
def _code_digest() -> str:
    """Size and mtime of mlaudit's own modules and rule files (once per process)."""
    import mlaudit

    h = hashlib.sha256()
    base = Path(mlaudit.__file__).parent
    for folder in (base, base.parent / "rules", base / "_rules"):
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.suffix in (".py", ".yaml", ".yml", ".json") and p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _git_state(root: Path) -> str:
    git = project_root(root) / ".git"
    if not git.is_dir():
        return f"no git dir at {git}"
    parts = []
    try:
        head = (git / "HEAD").read_text(errors="replace").strip()
        parts.append(head)
        if head.startswith("ref: "):
            ref = git / head[5:]
            parts.append(ref.read_text(errors="replace").strip() if ref.is_file() else "packed")
            packed = git / "packed-refs"
            if packed.is_file():
                parts.append(file_sha256(packed) or "")
        st = (git / "index").stat()
        parts.append(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    except OSError as err:
        parts.append(f"unreadable: {err}")
    return "\0".join(parts)


def _options_repr(options: ScanOptions) -> str:
    # jobs, cache_dir and the executor change how a scan runs, never what it reports
    skip = {"jobs", "cache_dir", "executor", "ray_address"}
    return repr([(f.name, getattr(options, f.name)) for f in fields(options) if f.name not in skip])


def root_memo(cache: ScanCache | None, session: ScanSession, needed: Iterable[str],
              prefix: str) -> RootMemo | None:
    """The memo of this root, or None when there is no cache, the scan names a single file, or
    some file's content cannot be identified."""
    if cache is None or session.single_file:
        return None
    needed = set(needed)
    kinds = tuple(k for k in PREFETCH_KINDS if k in needed)
    context = scan_context(session, kinds)
    h = hashlib.sha256()
    # a remote target's root is a fresh temporary mirror each run: its URI (in prefix) names it
    root = "remote" if "://" in prefix else str(session.root)
    for part in ("root", MEMO_FORMAT, __version__, _code_digest(), context, prefix, str(Path.cwd()),
                 root, _options_repr(session.options)):
        h.update(repr(part).encode() + b"\0")
    if needed & _GIT_INPUTS and root != "remote":  # a bucket has no git state
        h.update(_git_state(session.root).encode() + b"\0")
    for f in sorted(session.files, key=lambda f: f.rel):
        ident = _identity(cache, f, context)
        if ident is None:
            return None
        h.update(f"{f.rel}\0{f.kind}\0{ident}\0".encode())
    return RootMemo(cache, h.hexdigest())


def _identity(cache: ScanCache, f: Any, context: str) -> str | None:
    if f.kind == "checkpoint":
        return cache.key(f, context)
    obj = remote_object(f.path)
    if obj is not None:
        return obj.content_id
    if f.kind == "other":  # no rule reads their bytes: size and times (ctime moves on any write)
        try:
            st = os.stat(f.path)
        except OSError:
            return None
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    if f.kind == "unreadable":
        return "unreadable"
    return file_sha256(f.path)
