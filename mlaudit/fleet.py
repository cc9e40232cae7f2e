"""Checkpoint work fanned out to processes, and remembered across runs (issue 15).

Before the rules run, the engine hands the checkpoint inputs the selected rules need
(`checkpoint`, `checkpoint_layout`, `checkpoint_stats`: the static pickle scan, the layout and
the one-pass statistics, where nearly all of a registry scan's time goes) to `prefetch`. It
loads them file by file, in worker processes when `--jobs` allows (fork, so workers inherit the
session and the imported readers), and stores each value, each InputError and each artifact in
the parent's session in file order. A worker also runs the per-checkpoint rules (those whose
input is one of these kinds: pure functions of one file's value) on the values it loaded and
sends back their findings and skip notes per rule; the engine takes them in rule order and
file order, where a serial scan would have run that rule on that file, so the report is the
same whatever the number of workers. Every other rule runs in the parent.

With `--cache DIR` each file's prefetched inputs are stored under a key made of the SHA-256 of
its bytes, the mlaudit version, the selected rules and their params, the scan options that change
what a reader does, and a digest of the other files of the project (size and mtime of configs,
shard indexes, READMEs: what pairing and layout read). A re-run reads each checkpoint once, to
hash it, and loads only the files whose key is new. A security verdict can never come from a
stale entry: the key covers every byte of the file. Entries are pickles written atomically
by mlaudit itself; the cache directory is as trusted as the venv, so one that other users may
write to is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit import __version__
from mlaudit.fsutil import atomic_writer, file_sha256
from mlaudit.inputs import InputError, ensure_input_kind
from mlaudit.inputs.remote import remote_object
from mlaudit.inputs.repo import RepoFile
from mlaudit.inputs.session import ScanSession
from mlaudit.model import ArtifactSummary, Finding

# Checkpoint inputs worth loading ahead, in dependency order. `model_probe` and
# `checkpoint_memory` stay in the parent: they may import torch and run project code.
PREFETCH_KINDS = ("checkpoint", "checkpoint_layout", "checkpoint_stats")
# Below this many checkpoints, starting workers costs more than it saves.
PARALLEL_MIN_FILES = 4
# With the default worker count (neither --jobs nor MLAUDIT_JOBS), checkpoints smaller than this
# in all are read in one process: starting workers (importing multiprocessing, forking, sending
# results back) costs more than reading a few MB of small files (a 300 KB, 67-file security
# corpus: 0.05 s more CPU with two workers than without). A number given is always obeyed.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
CACHE_FORMAT = 2  # bump when the entry layout changes


class CacheError(Exception):
    """The cache directory cannot be used (one line, exit 2)."""


def worker_count(jobs: int | None, n_items: int) -> int:
    """Processes for `n_items` units of work: `jobs` (--jobs) when given, else MLAUDIT_JOBS,
    else one per available core; never more than the items, 1 where fork is unavailable."""
    if jobs is None:
        env = os.environ.get("MLAUDIT_JOBS", "").strip()
        jobs = int(env) if env.isdigit() and int(env) > 0 else None
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if max(1, min(jobs, n_items)) == 1:
        return 1
    import multiprocessing  # only when workers may start (~30 ms CPU with concurrent.futures)

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(jobs, n_items))


def _jobs_given(jobs: int | None) -> bool:
    """Whether the user chose the number of workers (--jobs, or a valid MLAUDIT_JOBS)."""
    env = os.environ.get("MLAUDIT_JOBS", "").strip()
    return jobs is not None or (env.isdigit() and int(env) > 0)


# The modules a worker would import on its first file, per prefetched kind (the loaders import
# them lazily, so that a scan without checkpoints never pays for them).
_READER_MODULES = {
    "checkpoint": ("mlaudit.inputs.checkpoint.readers",),
    "checkpoint_stats": ("mlaudit.inputs.checkpoint.array_stats",),  # numpy
}


def _import_readers(kinds: Sequence[str]) -> None:
    """Import the loaders of `kinds` and the readers they use once, in the parent: forked
    workers inherit them instead of each importing its own copy (numpy alone is ~0.1 s CPU)."""
    for kind in kinds:
        ensure_input_kind(kind)
        for module in _READER_MODULES.get(kind, ()):
            importlib.import_module(module)


@dataclass
class FileResult:
    """What loading one file's checkpoint inputs produced (picklable: errors as text)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (path, reason)
    artifacts: list[ArtifactSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # files found inconclusive and read errors the loaders recorded without raising: (path, reason)
    inconclusive: list[tuple[str, str]] = field(default_factory=list)
    input_errors: list[tuple[str, str]] = field(default_factory=list)


# (code, value, file) -> findings of one rule on one file, a crash already turned into MLA001
RuleRunner = Callable[[str, Any, RepoFile], list[Finding]]
# rel -> code -> (findings, skip notes) of the per-checkpoint rules a worker ran on that file
RuleResults = dict[str, dict[str, tuple[list[Finding], list[str]]]]


@dataclass(frozen=True)
class FileRules:
    """Per-checkpoint rules for the workers: (code, input kind) in the engine's rule order,
    and the engine's runner (whose `skipped` list collects the rules' skip notes)."""

    rules: tuple[tuple[str, str], ...]
    run: RuleRunner


def _run_rules(plan: FileRules, result: FileResult,
               f: RepoFile) -> dict[str, tuple[list[Finding], list[str]]]:
    """Each rule of `plan` on the value of its kind that `result` holds for `f`, as the engine
    would run it there (a file whose input failed or is absent is skipped the same way)."""
    skipped: list[str] = getattr(plan.run, "skipped", [])
    out: dict[str, tuple[list[Finding], list[str]]] = {}
    for code, kind in plan.rules:
        if kind in result.errors or result.values.get(kind) is None:
            continue
        before = len(skipped)
        found = plan.run(code, result.values[kind], f)
        out[code] = (found, skipped[before:])
        del skipped[before:]
    return out


def _new_entries(table: dict[str, InputError], before: set[str]) -> list[tuple[str, str]]:
    return [(e.path, e.reason) for k, e in table.items() if k not in before]


def _load(session: ScanSession, kinds: Sequence[str], f: RepoFile) -> FileResult:
    out = FileResult()
    n_art, n_notes = len(session.artifacts), len(session.notes)
    seen_inconclusive, seen_errors = set(session.inconclusive), set(session.input_errors)
    for kind in kinds:
        try:
            out.values[kind] = session.get(kind, f)
        except InputError as err:  # InputError does not pickle: sent as text
            out.errors[kind] = (err.path, err.reason)
    out.artifacts = session.artifacts[n_art:]
    out.notes = session.notes[n_notes:]
    out.inconclusive = _new_entries(session.inconclusive, seen_inconclusive)
    out.input_errors = _new_entries(session.input_errors, seen_errors)
    del session.artifacts[n_art:], session.notes[n_notes:]
    return out


# What forked workers inherit: set just before the pool starts, cleared after.
_STATE: tuple[ScanSession, tuple[str, ...], FileRules | None] | None = None


def _worker(index: int) -> tuple[FileResult, dict[str, tuple[list[Finding], list[str]]]]:
    assert _STATE is not None, "worker started without a scan state"
    session, kinds, plan = _STATE
    f = session.files[index]
    try:
        result = _load(session, kinds, f)
        return result, (_run_rules(plan, result, f) if plan is not None else {})
    finally:
        for kind in kinds:  # this worker will not need them again
            session.forget(kind, f)


def _apply(session: ScanSession, kinds: Sequence[str], f: RepoFile, result: FileResult) -> None:
    for kind in kinds:
        if kind in result.errors:
            path, reason = result.errors[kind]
            session.record_error((kind,), f.rel, InputError(path, reason))
        else:
            session.preload(kind, f.rel, result.values.get(kind))
    _side_effects(session, result)


def _side_effects(session: ScanSession, result: FileResult) -> None:
    """What the loaders told the session besides their values (idempotent)."""
    session.artifacts.extend(result.artifacts)
    session.notes.extend(result.notes)
    for path, reason in result.inconclusive:
        session.add_inconclusive(InputError(path, reason))
    for path, reason in result.input_errors:
        session.input_errors.setdefault(path, InputError(path, reason))


class ScanCache:
    """Content-addressed store of prefetched checkpoint inputs (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise CacheError(f"--cache {directory}: not a directory")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            st = self.dir.stat()
        except OSError as err:
            raise CacheError(f"--cache {directory}: {err.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise CacheError(f"--cache {directory}: not a directory")
        # Entries are unpickled: a directory others can write to could plant code.
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            raise CacheError(f"--cache {directory}: writable by other users or not owned by you; "
                             "use a private directory")
        self.hits = 0
        self.misses = 0
        self._keys: dict[tuple[Path, str], str] = {}

    def key(self, f: RepoFile, context: str) -> str | None:
        """Cache key of `f` in this scan's `context`; None when the file cannot be read."""
        memo = self._keys.get((f.path, context))
        if memo is not None:  # hashed already in this scan (the root memo asks first)
            return memo
        key = self._key(f, context)
        if key is not None:
            self._keys[(f.path, context)] = key
        return key

    def _key(self, f: RepoFile, context: str) -> str | None:
        obj = remote_object(f.path)
        if obj is not None:  # an object in a bucket: the store's content identity, not a download
            if obj.content_id is None:
                return None  # nothing identifies its content: scanned every time
            ident = f"{context}\0{f.rel}\0{obj.url}\0{obj.size}\0{obj.content_id}"
            return hashlib.sha256(ident.encode()).hexdigest()
        content = file_sha256(f.path)
        if content is None:
            return None  # the reader reports it
        return hashlib.sha256(f"{context}\0{f.rel}\0{f.path}\0{content}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> FileResult | None:
        try:
            with open(self._path(key), "rb") as fh:
                entry = pickle.load(fh)  # noqa: S301 - mlaudit's own entries in a private directory
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            return None  # absent or unreadable (a torn write cannot happen: see put)
        if not isinstance(entry, tuple) or len(entry) != 2 or entry[0] != CACHE_FORMAT:
            return None
        return entry[1] if isinstance(entry[1], FileResult) else None

    def put(self, key: str, result: FileResult) -> None:
        try:
            with atomic_writer(self._path(key), "wb") as fh:
                pickle.dump((CACHE_FORMAT, result), fh, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            pass  # a full or read-only cache costs a re-scan next time, never this scan


def scan_context(session: ScanSession, kinds: Sequence[str]) -> str:
    """Everything besides a file's own bytes that its prefetched inputs depend on."""
    opts = session.options
    h = hashlib.sha256()
    params = {code: session.rule_params(code) for code in ("MLC016",)}  # the readers' own bounds
    for part in (__version__, CACHE_FORMAT, sorted(kinds), sorted(opts.codes),
                 sorted((k, sorted(v.items())) for k, v in opts.params.items()), repr(params),
                 opts.spectral, opts.allow_code, str(opts.training_config), session.single_file):
        h.update(repr(part).encode() + b"\0")
    # Layout and pairing read configs, shard indexes and READMEs beside a checkpoint: any change
    # to a non-checkpoint file of the project invalidates every entry (cheap and safe).
    for f in session.files:
        obj = remote_object(f.path)
        if obj is not None and f.kind != "checkpoint":  # its mirror copy's mtime is the download's
            h.update(f"{f.rel}\0{obj.size}\0{obj.content_id or obj.url + ' (no content id)'}\0".encode())
            if obj.content_id is None:  # nothing names its content: no entry can be trusted
                h.update(os.urandom(16))
        elif f.kind != "checkpoint":
            try:
                st = f.path.stat()
            except OSError:
                continue
            h.update(f"{f.rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def _load_on_ray(session: ScanSession, kinds: tuple[str, ...], todo: list[int], jobs: int | None,
                 results: dict[int, FileResult]) -> None:
    """--executor ray: the files of `todo` loaded by Ray workers, taken as they finish."""
    from mlaudit import fleet_ray

    tracker, session.progress = session.progress, None  # workers never draw
    try:
        for i, result in fleet_ray.map_files(session, kinds, todo, session.options.ray_address,
                                             fleet_ray.default_cpus(jobs), _load):
            results[i] = result
            if tracker is not None:
                tracker.advance()
    finally:
        session.progress = tracker


def prefetch(session: ScanSession, needed: set[str], jobs: int | None,
             cache: ScanCache | None = None, rules: FileRules | None = None) -> RuleResults:
    """Load the checkpoint inputs among `needed` for every checkpoint file of the session,
    from `cache` where it has them, else in up to `jobs` processes; store them in the session
    in file order, so the report does not depend on the number of workers. Files loaded in a
    worker also get the `rules` run there: their results come back by file (see RuleResults);
    the engine runs the rules itself for every other file."""
    global _STATE
    kinds = tuple(k for k in PREFETCH_KINDS if k in needed)
    indices = [i for i, f in enumerate(session.files) if f.kind == "checkpoint"]
    ruled: RuleResults = {}
    if not kinds or not indices:
        return ruled
    plan = None
    if rules is not None:  # only rules whose input this pass loads
        plan = FileRules(tuple((c, k) for c, k in rules.rules if k in kinds), rules.run)
    results: dict[int, FileResult] = {}
    keys: dict[int, str] = {}
    if cache is not None:
        context = scan_context(session, kinds)
        for i in indices:
            key = cache.key(session.files[i], context)
            if key is None:
                continue
            keys[i] = key
            hit = cache.get(key)
            if hit is not None:
                results[i] = hit
        cache.hits += len(results)
        cache.misses += len(indices) - len(results)
    todo = [i for i in indices if i not in results]
    tracker = session.progress
    on_ray = session.options.executor == "ray" and not session.single_file and bool(todo)
    small = not _jobs_given(jobs) and sum(session.files[i].size for i in todo) < PARALLEL_MIN_BYTES
    serial = session.single_file or len(todo) < PARALLEL_MIN_FILES or small
    workers = 1 if serial else worker_count(jobs, len(todo))
    if on_ray:
        _load_on_ray(session, kinds, todo, jobs, results)
    elif workers <= 1:
        for i in todo:
            results[i] = _load(session, kinds, session.files[i])
    elif todo:
        # Workers must not draw: the parent advances the display as results come back.
        session.progress = None
        _import_readers(kinds)
        _STATE = (session, kinds, plan if plan is not None and plan.rules else None)
        try:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                # biggest files first so that workers finish together; chunks keep IPC small
                order = sorted(todo, key=lambda i: -session.files[i].size)
                chunk = max(1, min(16, len(order) // (workers * 8)))
                for i, (result, found) in zip(order, pool.map(_worker, order, chunksize=chunk), strict=True):
                    results[i] = result
                    if found:
                        ruled[session.files[i].rel] = found
                    if tracker is not None:
                        tracker.advance()
        finally:
            _STATE = None
            session.progress = tracker
    for i in indices:  # file order, whoever loaded it
        f = session.files[i]
        if cache is not None and i in keys and i in todo:
            cache.put(keys[i], results[i])
        if workers > 1 or on_ray or i not in todo:
            _apply(session, kinds, f, results[i])
            session.mark_read([f.rel], tracker if i not in todo else None)
        else:  # loaded in this process: values already in the session, artifacts taken out by _load
            _side_effects(session, results[i])
    return ruled
