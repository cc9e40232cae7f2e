"""Per-root scan state: the file list, options, and a cache of loaded inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, ensure_input_kind
from mlaudit.inputs.repo import RepoFile
from mlaudit.model import ArtifactSummary
from mlaudit.params import RuleParams
from mlaudit.progress import Tracker


@dataclass(frozen=True)
class ScanOptions:
    """Everything that changes what a scan reads or reports, resolved from flags + config."""

    codes: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    severity_overrides: Mapping[str, str] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    respect_gitignore: bool = True
    # Running project code (importing a model class) is never the default.
    allow_code: bool = False
    # A training config to pair with checkpoints, overriding discovery (`--config`).
    training_config: Path | None = None
    # Spectral (WeightWatcher-style) metrics are slow: only behind `--spectral`.
    spectral: bool = False
    # Audits: report findings even where inline comments or per-file-ignores suppress them.
    ignore_suppressions: bool = False
    # Why each per-file-ignores glob exists (None: no reason given), and whether one is required.
    per_file_ignore_reasons: Mapping[str, str | None] = field(default_factory=dict)
    require_suppression_reason: bool = False
    # The settings file as the user sees it (relative to the working directory), so meta
    # findings about suppressions can point at it.
    settings_file: str | None = None
    # Processes for checkpoint work (`--jobs`; None: MLAUDIT_JOBS, else one per core).
    jobs: int | None = None
    # Content-addressed cache of checkpoint inputs (`--cache DIR`), None: no cache.
    cache_dir: Path | None = None
    # Where checkpoint work runs: "local" (forked processes, --jobs) or "ray" (--executor ray,
    # on the cluster at ray_address, else a local one with --jobs CPUs).
    executor: str = "local"
    ray_address: str | None = None


_MISSING = object()


class ScanSession:
    """Loads each input at most once and remembers which files failed to parse."""

    def __init__(
        self,
        root: Path,
        files: list[RepoFile],
        options: ScanOptions,
        single_file: bool,
        rule_params: Callable[[str], RuleParams],
    ):
        self.root = root
        # A rule's resolved params, for the few readers whose work a rule bounds (the spectral
        # caps of MLC016); supplied by the engine so that inputs never read the catalog.
        self.rule_params = rule_params
        self.files = files
        self.options = options
        self.single_file = single_file
        self.artifacts: list[ArtifactSummary] = []
        self.notes: list[str] = []  # one-line facts for the report (a named file that is no config)
        self.input_errors: dict[str, InputError] = {}
        # Files read but not to the end (reported as MLA002 beside their other findings; unlike
        # input_errors they never stop a single-file scan).
        self.inconclusive: dict[str, InputError] = {}
        self._cache: dict[tuple[str, str], Any] = {}
        self._texts: dict[str, str] = {}
        # kind -> targets(kind), built once: ~20 config rules each asking for every file's
        # training config made 400,000 cache look-ups on a 20,000-file tree
        self._targets: dict[str, list[tuple[RepoFile | None, Any]]] = {}
        # rel -> ASCII markers its text is known not to contain (learned where the file was
        # already read, e.g. in a worker), so a later reader looking only for them can skip it
        self._absent: dict[str, frozenset[str]] = {}
        # Files read so far, for the progress display (files done / total) on a terminal.
        self.progress: Tracker | None = None
        self._read: set[str] = set()

    def get(self, kind: str, file: RepoFile | None = None) -> Any:
        """The parsed input of `kind` for `file` (or the project); None if not applicable.

        Raises InputError when the file cannot be parsed; the error is cached too, so a
        corrupt file is reported once however many rules want it.
        """
        key = (kind, file.rel if file else "")
        cached = self._cache.get(key, _MISSING)
        if cached is not _MISSING:
            if isinstance(cached, InputError):
                raise cached
            return cached
        loader = ensure_input_kind(kind).loader
        # progress counts each file once, on its first read
        progress = self.progress if file is not None and file.rel not in self._read else None
        if progress is not None and file is not None:
            self._read.add(file.rel)
            progress.step(file.rel)
        try:
            try:
                value = loader(self, file)
            except OSError as err:  # unreadable (permissions, I/O): inconclusive, never a crash
                raise InputError(file.rel if file else ".", f"cannot read: {err.strerror or err}") from None
        except InputError as err:
            self._cache[key] = err
            self.input_errors.setdefault(err.path, err)
            raise
        finally:
            if progress is not None:
                progress.advance()
        self._cache[key] = value
        return value

    def preload(self, kind: str, rel: str, value: Any) -> None:
        """Store an input of `kind` for the file at `rel` computed elsewhere (a worker process)."""
        self._cache[(kind, rel)] = value
        self._targets.pop(kind, None)

    def record_error(self, kinds: tuple[str, ...], rel: str, err: InputError) -> None:
        """Record that the file at `rel` could not be read as any of `kinds` (a worker's
        InputError), exactly as if this session had failed to load it."""
        for kind in kinds:
            self._cache[(kind, rel)] = err
            self._targets.pop(kind, None)
        self.input_errors.setdefault(err.path, err)

    def mark_read(self, rels: list[str], tracker: Tracker | None) -> None:
        """Count files read elsewhere (by worker processes) on the progress display."""
        for rel in rels:
            if rel not in self._read:
                self._read.add(rel)
                if tracker is not None:
                    tracker.advance()

    def forget(self, kind: str, file: RepoFile) -> None:
        """Drop a cached input (a worker frees each syntax tree after its rules ran)."""
        self._cache.pop((kind, file.rel), None)
        self._targets.pop(kind, None)

    def note_absent(self, rel: str, markers: frozenset[str]) -> None:
        """Record that the text of the file at `rel` contains none of `markers` (ASCII)."""
        if markers:
            self._absent[rel] = markers

    def lacks(self, rel: str, marker: str) -> bool:
        """Whether the file at `rel` is known to hold no `marker` (False: unknown or present)."""
        return marker in self._absent.get(rel, ())

    def targets(self, kind: str) -> list[tuple[RepoFile | None, Any]]:
        """(file, parsed input) pairs for every file this kind applies to."""
        spec = ensure_input_kind(kind)
        if spec.scope == "project":
            return [(None, self.get(kind))]
        known = self._targets.get(kind)
        if known is not None:
            return known
        out: list[tuple[RepoFile | None, Any]] = []
        for f in self.files:
            if f.kind in spec.file_kinds:
                try:
                    out.append((f, self.get(kind, f)))
                except InputError:
                    continue  # recorded in input_errors; reported by the engine
        self._targets[kind] = out
        return out

    def read_text(self, file: RepoFile, limit: int = 1_000_000) -> str:
        """Cached UTF-8 text of a small file (replacement characters for bad bytes)."""
        if file.rel not in self._texts:
            try:
                with open(file.path, "rb") as fh:
                    self._texts[file.rel] = fh.read(limit).decode("utf-8", errors="replace")
            except OSError as err:
                raise InputError(file.rel, f"cannot read: {err.strerror}") from None
        return self._texts[file.rel]

    def add_inconclusive(self, err: InputError) -> None:
        """Record that a file was read but its verdict cannot be clean (MLA002)."""
        self.inconclusive.setdefault(err.path, err)

    def add_artifact(self, artifact: ArtifactSummary) -> None:
        self.artifacts.append(artifact)
