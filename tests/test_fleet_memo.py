"""--cache root memo (issue 15): an unchanged root re-run reads no input and runs no rule; any
change to what a rule reads, to the options or to mlaudit's code is a miss."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.gen.fleet_corpus import build_registry
from mlaudit import engine, fleet_memo
from mlaudit.engine import scan
from tests.test_fleet import _options, _view


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    build_registry(root / "models", 24, seed=7)
    (root / "train.yaml").write_text("optimizer:\n  lr: 0.001\n  clip_grad_norm: null\nseed: 1\n")
    (root / "README.md").write_text("# A project\n\nShort.\n")
    return root


def _refuse_work(monkeypatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("the root memo was not used: inputs were loaded again")

    monkeypatch.setattr(engine, "prefetch", refuse)
    monkeypatch.setattr(engine, "run_file_rules", refuse)


def _memos(cache: Path) -> list[Path]:
    return list((cache / "roots").glob("*.memo"))


def test_unchanged_root_reuses_its_outcome_without_reading(project, tmp_path, monkeypatch):
    options = _options(cache_dir=tmp_path / "cache")
    first = scan([project], options)
    assert len(_memos(tmp_path / "cache")) == 1
    with monkeypatch.context() as m:
        _refuse_work(m)
        again = scan([project], options)
    assert _view(again) == _view(first)
    assert _view(first) == _view(scan([project], _options()))  # memo on = cache off


def test_a_config_rewritten_with_same_size_and_mtime_is_a_miss(project, tmp_path):
    options = _options(cache_dir=tmp_path / "cache")
    scan([project], options)
    cfg = project / "train.yaml"
    st = cfg.stat()
    cfg.write_text(cfg.read_text().replace("0.001", "0.009"))
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cfg.stat().st_size == st.st_size
    changed = scan([project], options)
    assert _view(changed) == _view(scan([project], _options()))
    assert len(_memos(tmp_path / "cache")) == 2


def test_options_and_mlaudit_code_are_part_of_the_key(project, tmp_path, monkeypatch):
    options = _options(cache_dir=tmp_path / "cache")
    scan([project], options)
    scan([project], replace(options, severity_overrides={"MLS001": "warning"}))
    assert len(_memos(tmp_path / "cache")) == 2
    scan([project], replace(options, jobs=2))  # how a scan runs is not what it reports: a hit
    assert len(_memos(tmp_path / "cache")) == 2
    fleet_memo._code_digest.cache_clear()
    monkeypatch.setattr(fleet_memo, "_code_digest", lambda: "an edited rule")
    scan([project], options)
    assert len(_memos(tmp_path / "cache")) == 3


def test_several_roots_are_not_memoized(project, tmp_path):
    other = tmp_path / "other"
    build_registry(other, 6, seed=8)
    scan([project, other], _options(cache_dir=tmp_path / "cache"))
    assert not _memos(tmp_path / "cache")
