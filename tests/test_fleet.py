"""Fleet scan (issue 15): --jobs gives the serial report; --cache re-runs read nothing but hashes."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.gen.fleet_corpus import build_registry, checkpoint_bytes
from mlaudit import fleet
from mlaudit.catalog import load_catalog
from mlaudit.engine import ScanAbort, scan
from mlaudit.inputs import INPUT_KINDS, InputKind, ensure_input_kind
from mlaudit.inputs.session import ScanOptions
from mlaudit.model import Report


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    build_registry(root, 200, seed=15)
    return root


def _options(**kw) -> ScanOptions:
    codes = tuple(c for c, m in load_catalog().items() if m.status != "preview")
    return ScanOptions(codes=codes, **kw)


def _view(report: Report) -> tuple:
    """Everything in a report but wall times (the report's, and each statistics pass's)."""
    artifacts = [(a.path, a.kind, {k: v for k, v in a.details.items() if k != "seconds"})
                 for a in report.artifacts]
    return report.findings, artifacts, report.notes, report.skipped, report.files_scanned


def _differences(a: Report, b: Report) -> list[str]:
    """The findings only one of two reports has, for a readable failure message."""
    def show(label: str, found: set) -> list[str]:
        return [f"only {label}: {f.code} {f.location.path} {f.message}" for f in found]

    first, second = set(a.findings), set(b.findings)
    return show("first", first - second) + show("second", second - first)


def test_jobs_2_gives_the_serial_report_in_the_same_order(registry_dir):
    serial = scan([registry_dir], _options(jobs=1))
    parallel = scan([registry_dir], _options(jobs=2))
    assert _view(parallel) == _view(serial), _differences(serial, parallel)
    # the corpus really holds what the comparison is about: hostile, broken and ordinary files
    by_file: dict[str, set[str]] = {}
    for f in serial.findings:
        by_file.setdefault(Path(f.location.path).name, set()).add(f.code)
    evil = [n for n in by_file if n.startswith("evil_")]
    broken = [n for n in by_file if n.startswith(("broken_", "empty"))]
    assert len(evil) >= 15 and all(by_file[n] & {"MLS001", "MLS002"} for n in evil), by_file
    assert len(broken) >= 10 and all("MLA002" in by_file[n] for n in broken)
    assert sum(1 for a in serial.artifacts if a.kind == "checkpoint-stats") >= 50
    assert not (registry_dir / "CANARY_MUST_NOT_EXIST").exists()


def test_worker_count_prefers_the_flag_then_the_environment(monkeypatch):
    monkeypatch.setenv("MLAUDIT_JOBS", "3")
    assert fleet.worker_count(2, 100) == 2
    assert fleet.worker_count(None, 100) == 3
    assert fleet.worker_count(None, 2) == 2  # never more workers than files
    monkeypatch.delenv("MLAUDIT_JOBS")
    assert fleet.worker_count(None, 1000) == len(os.sched_getaffinity(0))


def _refuse_reading(monkeypatch) -> None:
    """Make every checkpoint reader fail loudly: a cached run must not call them."""
    for kind in fleet.PREFETCH_KINDS:
        spec = ensure_input_kind(kind)

        def refuse(session, file, _kind=kind):
            raise AssertionError(f"{_kind} of {file.rel} read again despite the cache")

        monkeypatch.setitem(INPUT_KINDS, kind, InputKind(spec.name, spec.scope, refuse, spec.file_kinds))


def test_cached_rerun_is_identical_and_reads_no_checkpoint(registry_dir, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = scan([registry_dir], _options(jobs=2, cache_dir=cache_dir))
    entries = list(cache_dir.rglob("*.pkl"))
    assert len(entries) == 200
    with monkeypatch.context() as m:
        _refuse_reading(m)
        again = scan([registry_dir], _options(jobs=2, cache_dir=cache_dir))
    assert _view(again) == _view(first)
    assert _view(first) == _view(scan([registry_dir], _options(jobs=1)))  # cache on = cache off


def test_changed_bytes_are_rescanned_even_with_same_size_and_mtime(tmp_path):
    import numpy as np

    root = tmp_path / "reg"
    (root / "m").mkdir(parents=True)
    target = root / "m" / "weights.pt"
    _, good = checkpoint_bytes("torch", np.random.default_rng(1), 8, tmp_path / "canary")
    target.write_bytes(good)
    cache_dir = tmp_path / "cache"
    clean = scan([root], _options(cache_dir=cache_dir))
    assert not {f.code for f in clean.findings} & {"MLS001", "MLS002"}
    # same length, same mtime, one payload: only the content hash can tell
    st = target.stat()
    _, evil = checkpoint_bytes("evil_pickle", np.random.default_rng(1), 8, tmp_path / "canary")
    target.write_bytes(evil.ljust(len(good), b"\0")[: max(len(good), len(evil))])
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    rescanned = scan([root], _options(cache_dir=cache_dir))
    assert {f.code for f in rescanned.findings} & {"MLS001", "MLS002"}
    assert rescanned.findings == scan([root], _options()).findings


def test_context_change_invalidates(registry_dir, tmp_path):
    cache_dir = tmp_path / "cache"
    options = _options(cache_dir=cache_dir)
    scan([registry_dir], options)
    narrowed = replace(options, codes=("MLS001", "MLA002"))
    # different rules, different key: entries are added, none reused
    before = len(list(cache_dir.rglob("*.pkl")))
    scan([registry_dir], narrowed)
    assert len(list(cache_dir.rglob("*.pkl"))) > before


def test_shared_cache_directory_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ScanAbort, match="writable by other users"):
        scan([tmp_path], _options(cache_dir=shared))
