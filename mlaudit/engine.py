"""Discovers targets, loads only the inputs that selected rules need, runs checks, builds a Report."""

from __future__ import annotations

import errno
import functools
import os
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from mlaudit import __version__
from mlaudit.catalog import load_catalog
from mlaudit.checks.registry import check_table, implementations
from mlaudit.context import RuleContext
from mlaudit.dispatch import run_file_rules
from mlaudit.fleet import PREFETCH_KINDS, CacheError, FileRules, RuleResults, ScanCache, prefetch
from mlaudit.fleet_memo import RootOutcome, root_memo
from mlaudit.fleet_ray import RayUnavailable
from mlaudit.inline_suppressions import apply_to_session
from mlaudit.inputs import INPUT_KINDS, InputError
from mlaudit.inputs.remote import RemoteError, RemoteTarget, close_target, is_remote, open_target
from mlaudit.inputs.repo import (
    UNREADABLE,
    RepoFile,
    classify,
    classify_named,
    is_excluded,
    project_root,
    relative_prefix,
    walk,
)
from mlaudit.inputs.session import ScanOptions, ScanSession
from mlaudit.inputs.training_config import config_excerpts, referenced_configs
from mlaudit.model import ArtifactSummary, Finding, Location, Report, Severity, fingerprint
from mlaudit.params import RuleParams
from mlaudit.progress import progress
from mlaudit.suppressions import matching_ignore, suppression_findings

RULE_CRASHED = "MLA001"
INCONCLUSIVE = "MLA002"
# Codes whose findings the engine itself emits (no registered check implements them).
UNUSED_SUPPRESSION = "MLA003"  # emitted by mlaudit.inline_suppressions (`# mlaudit: ignore[...]`)
# MLA004-MLA006: per-file-ignore and baseline bookkeeping (mlaudit/suppressions.py, baseline.py).
ENGINE_CODES = (RULE_CRASHED, INCONCLUSIVE, UNUSED_SUPPRESSION, "MLA004", "MLA005", "MLA006")
# Inputs read for every discovered file while MLA002 is selected, even if no other selected
# rule needs them: an unreadable checkpoint must be reported, never skipped as clean. This
# also gives the report its inventory (format, tensor and parameter counts per checkpoint).
# Rules whose flagged config line holds a credential: the HTML report's excerpt masks its value.
SECRET_CODES = frozenset({"MLT011"})
INVENTORY_INPUTS = ("checkpoint", "training_config", "python", "run_history")


class ScanAbort(Exception):
    """The scan cannot go on (missing path, unreadable file named explicitly): exit 2."""


def display_prefix(root: Path) -> str:
    """Prefix that turns root-relative paths into paths relative to the working directory
    when the root lies under it (as CI runs from the repo root), else relative to the root."""
    try:
        rel = root.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return ""
    text = rel.as_posix()
    return "" if text == "." else text + "/"


def _targets_for(path: Path, options: ScanOptions) -> tuple[Path, list[RepoFile], bool]:
    if not path.exists():
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python < 3.13 reports a loop this way
                raise ScanAbort(f"{path}: symlink loop (the link resolves to itself)") from None
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise ScanAbort(f"{path}: symlink loop (the link resolves to itself)") from None
            raise ScanAbort(f"{path}: broken symlink (its target does not exist)")
        raise ScanAbort(f"{path}: no such file or directory")
    if path.is_file():
        kind = classify_named(path)
        # A launcher or training config named on its own brings the DeepSpeed JSON it hands to
        # the engine: values are judged in the file where they take effect, reported there.
        refs = referenced_configs(path) if kind == "config" else []
        if not refs:
            return path.parent, [RepoFile(path, path.name, kind, path.stat().st_size)], True
        named = path.resolve()
        root = Path(os.path.commonpath([named.parent, *(r.parent for r in refs)]))
        return root, [RepoFile(p, p.relative_to(root).as_posix(), classify(p.name), p.stat().st_size)
                      for p in [named, *refs]], True
    if not os.access(path, os.R_OK | os.X_OK):
        raise ScanAbort(f"{path}: cannot read this directory (permission denied)")
    return path, walk(path, options.exclude, options.respect_gitignore), False


def _unreadable(files: Iterable[RepoFile]) -> dict[str, InputError]:
    """MLA002 for every file or folder the walk could not read: never skipped silently."""
    return {
        f.rel: InputError(
            f.rel,
            "cannot read this folder (permission denied or I/O error); nothing in it was scanned"
            if f.path.is_dir()
            else "cannot read this file (permission denied or I/O error)",
        )
        for f in files
        if f.kind == UNREADABLE
    }


def _context(code: str, options: ScanOptions, prefix: str, root: Path | None = None) -> RuleContext:
    """The context of rule `code` for findings whose paths are relative to `root` (by default
    the working directory: gate and settings findings); `prefix` makes them display paths."""
    meta = load_catalog()[code]
    sev = options.severity_overrides.get(code)
    cwd = Path.cwd()
    project_prefix, cwd_prefix = _path_prefixes(root if root is not None else cwd, cwd)
    return RuleContext(
        meta=meta,
        params=RuleParams.build(meta, options.params),
        severity=Severity(sev) if sev else meta.severity,
        prefix=prefix,
        project_prefix=project_prefix,
        cwd_prefix=cwd_prefix,
    )


@functools.lru_cache(maxsize=64)
def _path_prefixes(root: Path, cwd: Path) -> tuple[str, str]:
    """(root relative to its project root, root relative to the working directory)."""
    return relative_prefix(root, project_root(root)), relative_prefix(root, cwd)


def _crash_finding(code: str, where: str, exc: BaseException, ctx: RuleContext) -> Finding:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    origin = f"{os.path.basename(last.filename)}:{last.lineno}" if last else "?"
    return ctx.finding(
        f"rule {code} crashed on this input and reported nothing: "
        f"{type(exc).__name__}: {exc} (at {origin})",
        Location(where),
        evidence={"rule": code, "exception": type(exc).__name__},
        key=code,
    )


class _Runner:
    """Runs one rule on one input with the rule's context built once per scan root; a crash
    becomes an MLA001 finding (a bug in one rule must not hide the others' results)."""

    def __init__(self, session: ScanSession, options: ScanOptions, prefix: str, skipped: list[str]) -> None:
        self.session, self.options, self.prefix = session, options, prefix
        self.skipped = skipped  # the rules' skip notes (ctx.skip) land here
        self._contexts: dict[str, RuleContext] = {}
        self._impls = dict(implementations(options.codes))

    def context(self, code: str) -> RuleContext:
        ctx = self._contexts.get(code)
        if ctx is None:
            ctx = _context(code, self.options, self.prefix, self.session.root)
            ctx = self._contexts[code] = replace(ctx, skips=self.skipped)
        return ctx

    def __call__(self, code: str, target: object, file: RepoFile | None) -> list[Finding]:
        try:
            found = list(self._impls[code].func(target, self.context(code)))
            # an input seen inside a larger whole (a Hydra member in its composed config)
            # says which findings are its own to report
            owns = getattr(target, "reports_on", None)
            if callable(owns):
                cut = len(self.prefix)
                found = [f for f in found if owns(f.location.path[cut:], f.location.line)]
            return found
        except Exception as exc:
            return [_crash_finding(code, file.rel if file else ".", exc, self.context(RULE_CRASHED))]

    def rule(self, code: str, done: RuleResults | None = None) -> list[Finding]:
        """Rule `code` over every input it needs (file by file, or once for the project).
        Where a worker already ran it on a file (`done`), its findings and skip notes are
        taken at this point, as if the rule had run here."""
        out: list[Finding] = []
        try:
            targets = self.session.targets(self._impls[code].needs)
        except InputError:
            return out  # project-level input failed: recorded in session.input_errors
        for file, target in targets:
            if target is None:
                continue
            ran = done.get(file.rel, {}).get(code) if done and file is not None else None
            if ran is None:
                out.extend(self(code, target, file))
            else:
                out.extend(ran[0])
                self.skipped.extend(ran[1])
        return out


def _inconclusive(errors: Iterable[InputError], options: ScanOptions, prefix: str,
                  root: Path, read: Iterable[str] = ()) -> list[Finding]:
    """MLA002 per file: unreadable ones, and (paths in `read`) files read whose verdict still
    cannot be clean (their other findings stand beside this one)."""
    ctx = _context(INCONCLUSIVE, options, prefix, root)
    read = set(read)
    return [
        ctx.finding(
            f"read, but it cannot be called clean: {err.reason}" if err.path in read
            else f"could not be fully read, so it was not checked: {err.reason}",
            Location(err.path),
            evidence={"reason": err.reason},
        )
        for err in errors
    ]


def rule_context(code: str, options: ScanOptions, prefix: str = "") -> RuleContext:
    """Public form of the per-rule context, for post-processing that emits meta findings
    about files named relative to the working directory (settings, baselines)."""
    return _context(code, options, prefix)


def _remote_target(path: Path | str, options: ScanOptions) -> RemoteTarget | None:
    """The listed remote target for a URL (None for a local path); ScanAbort if unlistable."""
    if not is_remote(path):
        return None
    try:
        return open_target(str(path), options.exclude)
    except RemoteError as err:
        raise ScanAbort(str(err)) from None


def scan(paths: Sequence[Path | str], options: ScanOptions) -> Report:
    """Scan each path (a project directory or a single file) with the selected rules."""
    started = time.perf_counter()
    # A rule that would silently report nothing (catalog and implementations disagree) stops
    # the scan with one line instead: RegistryError, exit 2.
    check_table(load_catalog(), ENGINE_CODES)
    impls = implementations(options.codes)
    runnable = [c for c in options.codes if c in impls]
    findings: list[Finding] = []
    artifacts: list[ArtifactSummary] = []
    notes: list[str] = []
    files_scanned = 0
    suppressed = 0
    used_ignores: set[str] = set()
    skipped: list[str] = []
    needed = {impls[c].needs for c in runnable} | ({"checkpoint"} if INCONCLUSIVE in options.codes else set())
    try:
        cache = ScanCache(options.cache_dir) if options.cache_dir is not None else None
    except CacheError as err:
        raise ScanAbort(str(err)) from None
    for path in paths:
        target = _remote_target(path, options)
        if target is not None:  # s3://, gs://, hf://: findings name the URI
            root, files, single, prefix = target.root, target.files, target.single, target.display_prefix
        else:
            root, files, single = _targets_for(Path(path), options)
            prefix = display_prefix(root)
        session = ScanSession(root, files, options, single_file=single,
                              rule_params=lambda code: RuleParams.build(load_catalog()[code], options.params))
        files_scanned += len(files)
        session.input_errors.update(_unreadable(files))
        # --cache: a root whose every input is unchanged gets its last outcome, unread and unruled
        memo = root_memo(cache, session, needed, prefix) if len(paths) == 1 else None
        outcome = memo.lookup() if memo is not None else None
        if outcome is not None:
            findings.extend(outcome.findings)
            artifacts.extend(outcome.artifacts)
            notes.extend(outcome.notes)
            skipped.extend(outcome.skipped)
            suppressed += outcome.suppressed
            used_ignores |= outcome.used_ignores
            if target is not None:
                close_target(target)
            continue
        before = (len(findings), len(artifacts), len(notes), len(skipped), suppressed)
        root_findings: list[Finding] = []
        flagged_lines: dict[str, dict[int, bool]] = {}  # config rel path -> {line: secret?}
        # files read / total on a terminal when the scan runs past ~1 s (never in CI or pipes)
        with progress(f"scan {path}", total=len(files), unit="files") as bar:
            session.progress = bar
            runner = _Runner(session, options, prefix, skipped)
            # checkpoint inputs first: in worker processes (--jobs), which also run the
            # per-checkpoint rules on what they loaded, and from --cache
            per_checkpoint = FileRules(tuple((c, impls[c].needs) for c in runnable
                                             if impls[c].needs in PREFETCH_KINDS), runner)
            try:
                done = prefetch(session, needed, options.jobs, cache, per_checkpoint)
            except RayUnavailable as err:
                raise ScanAbort(str(err)) from None
            # Code rules run file by file (one parse, one walk per file, in parallel for large
            # trees); the other rules run one after another over the inputs they need.
            per_file = [c for c in runnable if impls[c].needs == "python"]
            reads_code = per_file or INCONCLUSIVE in options.codes or any(
                impls[c].needs == "training_setup" for c in runnable)
            by_code = run_file_rules(session, per_file, runner) if reads_code else {}
            for code in runnable:
                root_findings.extend(by_code[code] if code in by_code else runner.rule(code, done))
            if INCONCLUSIVE in options.codes:
                for kind in INVENTORY_INPUTS:
                    if kind != "python":  # every Python file was read (or failed) above
                        session.targets(kind)
            session.progress = None
        if session.input_errors and single:
            raise ScanAbort(f"{path}: {next(iter(session.input_errors.values())).reason}")
        if INCONCLUSIVE in options.codes:
            errors = {**session.inconclusive, **session.input_errors}
            root_findings.extend(_inconclusive(errors.values(), options, prefix, root, session.inconclusive))
        if not options.ignore_suppressions:
            unused = UNUSED_SUPPRESSION in options.codes
            unused_ctx = _context(UNUSED_SUPPRESSION, options, prefix, root) if unused else None
            root_findings, inline = apply_to_session(root_findings, session, runnable, prefix, unused_ctx)
            suppressed += inline
        # One finding per fact: a value inherited from a base config (YACS `_BASE_`) is judged
        # in every config built on it but reported once, where it is written.
        seen: set[tuple] = set()
        for f in root_findings:
            fact = (f.code, f.location.path, f.location.line, f.location.pointer, f.message)
            if fact in seen:
                continue
            seen.add(fact)
            rel = f.location.path[len(prefix):] if f.location.path.startswith(prefix) else f.location.path
            if options.exclude and is_excluded(rel, options.exclude):
                continue  # excluded paths stay out whichever input found them (git index too)
            glob = None if options.ignore_suppressions else matching_ignore(f, rel, options.per_file_ignores)
            if glob:
                suppressed += 1
                used_ignores.add(glob)
            else:
                findings.append(f)
                if f.location.line is not None:
                    hits = flagged_lines.setdefault(rel, {})
                    hits[f.location.line] = hits.get(f.location.line, False) or f.code in SECRET_CODES
        config_excerpts(session, flagged_lines)
        artifacts.extend(replace(a, path=prefix + a.path) for a in session.artifacts)
        notes.extend(prefix + n for n in session.notes)
        if target is not None:
            notes.extend(target.notes)
            close_target(target)
        if memo is not None:  # one root per scan: every ignore used so far was used here
            memo.store(RootOutcome(findings[before[0]:], suppressed - before[4], set(used_ignores),
                                   artifacts[before[1]:], notes[before[2]:], skipped[before[3]:]))
    if not options.ignore_suppressions:
        findings.extend(suppression_findings(
            codes=options.codes, per_file_ignores=options.per_file_ignores,
            reasons=options.per_file_ignore_reasons, require_reason=options.require_suppression_reason,
            settings_file=options.settings_file, used=used_ignores,
            context=lambda code: rule_context(code, options),
        ))
    findings.sort(key=Finding.sort_key)
    return Report(
        tool_version=__version__,
        roots=tuple(str(p) for p in paths),
        findings=tuple(findings),
        files_scanned=files_scanned,
        duration_s=time.perf_counter() - started,
        rules_run=tuple(options.codes),
        artifacts=tuple(artifacts),
        suppressed=suppressed,
        notes=tuple(notes),
        skipped=tuple(skipped),
    )


def needed_inputs(codes: Iterable[str]) -> set[str]:
    """Input kinds the given rules read (used by tests and `--verbose`)."""
    codes = list(codes)
    impls = implementations(codes)
    return {impls[c].needs for c in codes if c in impls and impls[c].needs in INPUT_KINDS}


__all__ = ["ScanAbort", "scan", "needed_inputs", "fingerprint"]
