"""Per-file dispatch of the code rules: each Python file (or notebook) is parsed once, its code
index is built by one walk, and every selected per-file rule runs on that one module before the
next file is read (as ruff and flake8 dispatch by file, not by rule).

Large trees are split across worker processes (fork, so workers inherit the session and the
imported rules): each worker parses its files, runs the per-file rules, and sends back the
findings and each module's `ModuleFacts` (what cross-file rules such as MLR003 need), never the
syntax trees. Unparseable files come back as (path, reason) and are recorded in the session
like any other input error. Small trees, a single file, or `MLAUDIT_JOBS=1` run in-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from mlaudit.inline_suppressions import MARKER as SUPPRESSION_MARKER
from mlaudit.inputs import InputError
from mlaudit.inputs.py_config import may_be_config_source
from mlaudit.inputs.python_code import ModuleFacts, module_facts
from mlaudit.inputs.python_module import PythonModule
from mlaudit.inputs.repo import RepoFile
from mlaudit.inputs.session import ScanSession
from mlaudit.model import Finding

PYTHON_KINDS = ("python", "test", "notebook")
# Below this many files, starting workers costs more than parsing in-process saves.
PARALLEL_MIN_FILES = 400
FILES_PER_WORKER = 150
MAX_WORKERS = 16

# (code, module, file) -> findings of one rule on one parsed module, crashes already turned
# into MLA001 findings by the engine.
RuleRunner = Callable[[str, Any, RepoFile], list[Finding]]

# What forked workers inherit: set just before the pool starts, cleared after.
_STATE: tuple[ScanSession, tuple[str, ...], RuleRunner] | None = None


def _can_fork() -> bool:
    # multiprocessing is imported only here and where workers start: its import (~30 ms CPU
    # with concurrent.futures) is a tenth of a small scan
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def worker_count(n_files: int, jobs: int | None = None) -> int:
    """Processes to use for `n_files` Python files: `--jobs` (`jobs`) or MLAUDIT_JOBS if set
    (the same setting as the checkpoint work in mlaudit.fleet), else one per available core,
    capped so that each worker gets a fair share of files."""
    if not _can_fork():
        return 1  # workers inherit the scan state by fork; elsewhere run in-process
    if jobs is not None:
        return jobs
    env = os.environ.get("MLAUDIT_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if n_files < PARALLEL_MIN_FILES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS, n_files // FILES_PER_WORKER))


# What one file's read tells the parent: its facts, and whether it can be a Python config
# module (False: its training_config input is None) and hold a suppression comment.
FileFacts = tuple[ModuleFacts | None, bool, bool]


def _one_file(session: ScanSession, codes: Sequence[str], run: RuleRunner, f: RepoFile,
              findings: dict[str, list[Finding]]) -> FileFacts:
    module = session.get("python", f)  # InputError propagates to the caller
    if module is None:
        return None, True, True
    for code in codes:
        findings[code].extend(run(code, module, f))
    return (module_facts(module), *_text_hints(module))


def _text_hints(module: PythonModule) -> tuple[bool, bool]:
    """(may be a config module, may hold a suppression comment), judged on the text already in
    memory, so that the parent need not read the file again for either. Only UTF-8 text can
    answer for the UTF-8 readers that ask later; otherwise both stay possible."""
    if not module.utf8:  # notebooks (cells, not the file) and files with a coding declaration
        return True, True
    return may_be_config_source(module.text), SUPPRESSION_MARKER in module.text


def _record(session: ScanSession, f: RepoFile, found: FileFacts) -> None:
    """Store one file's facts and what its text ruled out in the session."""
    facts, maybe_config, maybe_suppressed = found
    session.preload("python_facts", f.rel, facts)
    if not maybe_config:
        session.preload("training_config", f.rel, None)  # exactly what its loader returns
    if not maybe_suppressed:
        session.note_absent(f.rel, frozenset({SUPPRESSION_MARKER}))


def _worker(indices: list[int]) -> tuple[dict[str, list[Finding]], list[tuple[int, FileFacts]],
                                         list[tuple[str, str]], list[str]]:
    assert _STATE is not None, "worker started without a scan state"
    session, codes, run = _STATE
    skipped: list[str] = getattr(run, "skipped", [])
    known_skips = len(skipped)  # notes inherited from the parent at fork time
    findings: dict[str, list[Finding]] = {c: [] for c in codes}
    facts: list[tuple[int, FileFacts]] = []
    errors: list[tuple[str, str]] = []
    for i in indices:
        f = session.files[i]
        try:
            facts.append((i, _one_file(session, codes, run, f, findings)))
        except InputError as err:  # sent as plain text: InputError does not pickle
            errors.append((err.path, err.reason))
        session.forget("python", f)  # the tree is not needed again in this worker
    return findings, facts, errors, skipped[known_skips:]


def _chunks(indices: list[int], files: Sequence[RepoFile], n: int) -> list[list[int]]:
    """About 4 chunks per worker, biggest files dealt first so chunks end at similar times."""
    order = sorted(indices, key=lambda i: -files[i].size)
    count = max(1, min(len(order), n * 4))
    chunks: list[list[int]] = [[] for _ in range(count)]
    for k, i in enumerate(order):
        chunks[k % count].append(i)
    return [c for c in chunks if c]


def run_file_rules(session: ScanSession, codes: Sequence[str], run: RuleRunner) -> dict[str, list[Finding]]:
    """Findings of the per-file code rules `codes` on every Python file of the session, by code.

    The session is filled in with each file's ModuleFacts (input kind "python_facts") and its
    parse errors, so later cross-file rules do not parse or walk again."""
    global _STATE
    files = session.files
    indices = [i for i, f in enumerate(files) if f.kind in PYTHON_KINDS]
    findings: dict[str, list[Finding]] = {c: [] for c in codes}
    workers = 1 if session.single_file or not indices else worker_count(len(indices), session.options.jobs)
    if workers <= 1:
        for i in indices:
            f = files[i]
            try:
                _record(session, f, _one_file(session, codes, run, f, findings))
            except InputError:
                pass  # recorded in session.input_errors; reported as MLA002
            # As in a worker: the facts are kept, the tree is not (no later reader needs it,
            # and 20,000 live trees would make every garbage collection walk them all).
            session.forget("python", f)
        return findings
    # Workers must not draw: the parent advances the display as their chunks come back.
    tracker, session.progress = session.progress, None
    _STATE = (session, tuple(codes), run)
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_worker, chunk): chunk for chunk in _chunks(indices, files, workers)}
            for future in as_completed(futures):
                part, facts, errors, skips = future.result()
                for code, found in part.items():
                    findings[code].extend(found)
                for i, fact in facts:
                    _record(session, files[i], fact)
                for path, reason in errors:
                    session.record_error(("python", "python_facts"), path, InputError(path, reason))
                getattr(run, "skipped", []).extend(skips)
                session.mark_read([files[i].rel for i in futures[future]], tracker)
    finally:
        _STATE = None
        session.progress = tracker
    for code in findings:  # workers finish in any order; keep the output stable
        findings[code].sort(key=Finding.sort_key)
    return findings
