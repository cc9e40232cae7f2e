"""Walks a project tree and classifies its files by name and place.

Content-level detection (is this YAML a training config? which checkpoint format?) is
left to the specific readers; this module only decides what is worth handing to them.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.checkpoint.sniff import sniff
from mlaudit.inputs.git import tracked_ignored

if TYPE_CHECKING:
    import pathspec

DEFAULT_EXCLUDES = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs", "site-packages", ".ipynb_checkpoints",
)  # fmt: skip

# .zip/.tar/.tgz/.tar.gz: release bundles whose members are scanned like files (issue 11);
# .jit: TorchScript archives.
CHECKPOINT_SUFFIXES = frozenset({
    ".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".onnx", ".pt2", ".npy", ".npz",
    ".pkl", ".pickle", ".joblib", ".h5", ".tar", ".model", ".mar", ".jit", ".zip", ".tgz",
})  # fmt: skip
UNREADABLE = "unreadable"  # the kind of a file or folder the walk could not read (MLA002)
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".markdown", ""})
RUN_LOG_FILES = frozenset({"trainer_state.json"})
RUN_OUTPUT_DIRS = frozenset({"wandb", "mlruns", "lightning_logs", "runs", "outputs", "multirun"})
DEPENDENCY_FILES = frozenset({
    "requirements.txt", "requirements-dev.txt", "pyproject.toml", "setup.py", "setup.cfg",
    "Pipfile", "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock", "environment.yml",
    "environment.yaml", "conda-lock.yml", "requirements.in", "constraints.txt",
})  # fmt: skip
CI_FILES = frozenset({
    ".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml", "bitbucket-pipelines.yml",
    "Jenkinsfile", ".drone.yml", "cloudbuild.yaml", "buildkite.yml", ".woodpecker.yml",
})  # fmt: skip
CI_DIRS = (".github/workflows", ".circleci", ".buildkite", ".woodpecker", ".gitea/workflows")
DOC_STEMS = ("readme", "model_card", "modelcard", "model-card", "changelog", "contributing")


@dataclass(frozen=True)
class RepoFile:
    """A file found by the walk: absolute path, path relative to the root, kind, size."""

    path: Path
    rel: str
    kind: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


# Folders whose configs are test fixtures, not training setups of the project.
FIXTURE_DIRS = frozenset({"tests", "test", "testing", "fixtures", "testdata", "test_data"})


def classify(rel: str) -> str:
    """Kind of a file from its root-relative POSIX path.

    One of: checkpoint, config, fixture (a config in a test folder), python, test, docs, ci,
    deps, notebook, runlog, other.
    """
    if "//" in rel or rel.startswith(("./", "/")) or rel.endswith("/") or "/./" in rel:
        p = PurePosixPath(rel)  # not the walk's normal form: let pathlib normalise it
        name, suffix, parts = p.name, p.suffix.lower(), p.parts
    else:  # the same values by string operations: this runs for every file of the tree
        parts = tuple(rel.split("/"))
        name = parts[-1]
        dot = name.rfind(".")
        suffix = name[dot:].lower() if 0 < dot < len(name) - 1 else ""
    lower = name.lower()
    if any(rel.startswith(d + "/") for d in CI_DIRS) and suffix in {".yml", ".yaml"}:
        return "ci"
    if name in CI_FILES or rel == ".circleci/config.yml":
        return "ci"
    if name in DEPENDENCY_FILES or fnmatch.fnmatch(lower, "requirements*.txt"):
        return "deps"
    if suffix in {".yml", ".yaml"} and lower.startswith(("conda", "environment")) and len(parts) <= 2:
        return "deps"  # conda.yaml, conda-extras.yaml, environment-gpu.yml
    # pip requirement sets beyond the top-level names: requirements-dev.in, constraints-ci.txt,
    # and everything in a requirements/ folder (requirements/base.txt, requirements/gpu.in).
    if suffix in {".txt", ".in"} and (
        lower.startswith(("requirements", "constraints")) or (len(parts) > 1 and parts[-2] == "requirements")
    ):
        return "deps"
    # trainer_state.json is a run's log (issue 17), not a config: its logging_steps/max_steps keys
    # made it pass for a Hugging Face TrainingArguments file
    if ".tfevents." in name or name in RUN_LOG_FILES or any(part in RUN_OUTPUT_DIRS for part in parts[:-1]):
        return "runlog"
    if suffix in CHECKPOINT_SUFFIXES or lower.endswith((".safetensors.index.json", ".tar.gz")):
        return "checkpoint"
    if suffix == ".py":
        is_test = lower.startswith("test_") or lower.endswith("_test.py") or lower == "conftest.py"
        return "test" if is_test or any(part in {"tests", "test"} for part in parts[:-1]) else "python"
    if suffix == ".ipynb":
        return "notebook"
    if suffix in DOC_SUFFIXES and (lower.startswith(DOC_STEMS) or (parts[0] == "docs" and suffix)):
        return "docs"
    if suffix in CONFIG_SUFFIXES:
        # A config inside a test folder is a fixture (parser inputs, deliberately odd values):
        # config rules stay silent on it in a directory scan; named directly, it is a config.
        if any(part.lower() in FIXTURE_DIRS for part in parts[:-1]):
            return "fixture"
        return "config"
    return "other"


# Formats that content alone identifies beyond doubt (a guess from a few bytes, like protocol-0
# pickles or ONNX, does not make a file the user named a checkpoint).
_SURE_FORMATS = frozenset({"zip", "numpy", "safetensors", "pickle", "tar", "gzip", "lfs-pointer"})


def classify_named(path: Path) -> str:
    """Kind of a file named on the command line: by name, and by content when the name says
    nothing (a TorchScript archive called `model.jit`, weights without a suffix): a file the
    user names is never skipped because of its extension."""
    kind = classify(path.name)
    if kind != "other":
        return kind
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
        size = path.stat().st_size
    except OSError:
        return kind
    try:
        found = sniff(head, path.name, size)
    except InputError:
        return kind
    return "checkpoint" if found in _SURE_FORMATS else kind


def _tokenizer_model(path: Path, size: int) -> bool:
    """A `.model` file whose content no checkpoint format claims: sentencepiece protobufs and
    tiktoken base64 text share the suffix. Anything the sniffer recognizes (any pickle, zip,
    HDF5...) stays a checkpoint, so nothing that could be loaded escapes the scan."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
        sniff(head, path.name, size)
    except InputError:
        return bool(head)
    except OSError:
        return False
    return False


def is_excluded(rel: str, patterns: Sequence[str]) -> bool:
    """Whether a root-relative path matches an exclude glob (as a path, a name or a folder)."""
    glob, folders = _exclude_matcher(tuple(patterns))
    return glob(rel) is not None or glob(rel.rsplit("/", 1)[-1]) is not None or rel.startswith(folders)


@functools.lru_cache(maxsize=32)
def _exclude_matcher(patterns: tuple[str, ...]) -> tuple[Callable[[str], object], tuple[str, ...]]:
    """One compiled regex for all the globs (as fnmatch matches each) and the folder prefixes:
    the walk asks about every file and folder, against every pattern."""
    pats = [os.path.normcase(p.rstrip("/")) for p in patterns]
    regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in pats) or "(?!)")
    if os.path.normcase("A") == "A":
        return regex.match, tuple(p.rstrip("/") + "/" for p in patterns)
    return (lambda text: regex.match(os.path.normcase(text))), tuple(p.rstrip("/") + "/" for p in patterns)


def project_root(path: Path) -> Path:
    """The project a scan root belongs to: the nearest enclosing git work tree (a `.git`
    folder, or file for worktrees and submodules), else the scanned directory itself."""
    start = path.resolve()
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def relative_prefix(path: Path, base: Path) -> str:
    """`path` relative to `base` as a posix prefix ("" when equal, else ending in "/"); may
    climb with "..". Used for display, fingerprint and fix-hint paths."""
    rel = Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    return "" if rel == "." else rel + "/"


def walk(root: Path, exclude: Sequence[str] = (), respect_gitignore: bool = True) -> list[RepoFile]:
    """All files under `root`, minus default excludes, `exclude` globs and .gitignore'd paths.

    Symlinked directories are not followed (they can loop or leave the project). A file or
    folder that cannot be read is returned with kind "unreadable" (never skipped silently).
    """
    patterns = (*DEFAULT_EXCLUDES, *exclude)
    # Files git tracks although .gitignore lists them are part of the project as shipped:
    # they are walked (and MLV004 reports them), not hidden by the ignore rules.
    tracked = tracked_ignored(root.resolve()) if respect_gitignore else set()
    tracked_dirs = {"/".join(k.split("/")[:i]) for k in tracked for i in range(1, k.count("/") + 1)}
    ignore_specs: list[tuple[str, pathspec.GitIgnoreSpec]] = []
    found: list[RepoFile] = []

    def unreadable_dir(err: OSError) -> None:
        where = Path(err.filename) if err.filename else root
        rel = os.path.relpath(where, root).replace(os.sep, "/")
        found.append(RepoFile(where, "." if rel == "." else rel, UNREADABLE, 0))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable_dir):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        if respect_gitignore and ".gitignore" in filenames:
            import pathspec  # local: only a tree holding a .gitignore pays for it (~30 modules)

            try:
                lines = (Path(dirpath) / ".gitignore").read_text(encoding="utf-8", errors="replace")
                ignore_specs.append((rel_dir, pathspec.GitIgnoreSpec.from_lines(lines.splitlines())))
            except OSError:
                pass

        def ignored(rel: str, is_dir: bool) -> bool:
            if is_excluded(rel, patterns):
                return True
            if rel in (tracked_dirs if is_dir else tracked):
                return False
            for base, spec in ignore_specs:
                if base and not rel.startswith(base + "/"):
                    continue
                sub = rel[len(base) + 1 :] if base else rel
                if spec.match_file(sub + ("/" if is_dir else "")):
                    return True
            return False

        kept = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if not os.path.islink(os.path.join(dirpath, d)) and not ignored(rel, True):
                kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            rel = f"{rel_dir}/{f}" if rel_dir else f
            full = Path(dirpath) / f
            if ignored(rel, False):
                continue
            try:
                if not full.is_file():
                    continue
                size = full.stat().st_size
            except OSError:
                found.append(RepoFile(full, rel, UNREADABLE, 0))
                continue
            kind = classify(rel) if os.access(full, os.R_OK) else UNREADABLE
            if kind == "checkpoint" and rel.lower().endswith(".model") and _tokenizer_model(full, size):
                kind = "other"
            found.append(RepoFile(full, rel, kind, size))
    return found


@dataclass(frozen=True)
class ProjectSnapshot:
    """A scanned directory as project-level rules see it: its files and their kinds.

    Small text files are read on demand and cached by the session, so rules that never
    look at a README do not pay for reading it.
    """

    root: Path
    files: tuple[RepoFile, ...]
    _reader: object = None  # the session's cached text reader

    def of_kind(self, *kinds: str) -> list[RepoFile]:
        return [f for f in self.files if f.kind in kinds]

    def text(self, f: RepoFile, limit: int = 1_000_000) -> str:
        """The file's text (UTF-8, undecodable bytes replaced), at most `limit` bytes."""
        return self._reader(f, limit)  # type: ignore[operator]

    def find(self, rel: str) -> RepoFile | None:
        return next((f for f in self.files if f.rel == rel), None)

    def dirs(self) -> Iterable[str]:
        """Every directory (root-relative, '' for the root) that holds at least one file."""
        seen = {""}
        for f in self.files:
            parts = f.rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                seen.add("/".join(parts[:i]))
        return sorted(seen)


@input_kind("project", scope="project")
def load_project(session, _file) -> ProjectSnapshot | None:
    """The whole tree; None when the scan target is a single file (no project to judge)."""
    if session.single_file:
        return None
    return ProjectSnapshot(session.root, tuple(session.files), session.read_text)
