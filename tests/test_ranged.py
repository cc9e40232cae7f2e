"""RangedView (issue 15): the bytes-like and stream surface the checkpoint readers use, over
ranged reads; every byte fetched at most once; the generic fsspec path on memory://."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlaudit.inputs.ranged import MIN_READ, RangedView

DATA = bytes(range(256)) * 1000  # 256,000 bytes


def _view(data: bytes = DATA, **kw) -> tuple[RangedView, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(a: int, b: int) -> bytes:
        calls.append((a, b))
        return data[a:b]

    return RangedView(fetch, len(data), **kw), calls


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-300_000, 300_000), st.integers(-300_000, 300_000)), max_size=12))
def test_slices_equal_the_bytes_and_no_byte_is_fetched_twice(spans):
    view, calls = _view()
    for a, b in spans:
        assert view[a:b] == DATA[a:b]
    fetched = sorted(calls)
    for (_, end), (start, _) in zip(fetched, fetched[1:], strict=False):
        assert end <= start  # disjoint
    assert view.bytes_read == sum(b - a for a, b in calls) <= len(DATA)


def test_stream_reads_match_a_bytesio():
    view, _ = _view()
    ref = io.BytesIO(DATA)
    for op in [("read", 10), ("seek", 1000, 0), ("read", 70_000), ("seek", -5, 1), ("readline",),
               ("seek", -100, 2), ("read", -1), ("read", 5), ("seek", 3, 0), ("readline",)]:
        got = getattr(view, op[0])(*op[1:])
        want = getattr(ref, op[0])(*op[1:])
        assert got == want, op
        assert view.tell() == ref.tell()
    assert view[7] == DATA[7] and view[-1] == DATA[-1]
    with pytest.raises(IndexError):
        view[len(DATA)]


def test_a_small_read_costs_one_request_of_min_read_bytes():
    view, calls = _view()
    view[:8]
    view[8:500]
    assert calls == [(0, MIN_READ)]


def test_prefetch_batches_the_missing_spans_and_merges_close_ones():
    batches: list[list[tuple[int, int]]] = []
    view, calls = _view(min_read=1)
    view._fetch_many = lambda ranges: (batches.append(list(ranges)), [DATA[a:b] for a, b in ranges])[1]
    view[0:100]
    view.prefetch([(50, 200), (1000, 1100), (1200, 1300), (100_000, 100_050)])
    # 200..1000 is closer than MERGE_GAP: one span; 1300..100_000 is not
    assert batches == [[(100, 1300), (100_000, 100_050)]]
    n = len(calls)
    assert view[1000:1300] == DATA[1000:1300] and len(calls) == n  # served from the batch


def test_a_short_read_is_an_oserror_not_short_bytes():
    view = RangedView(lambda a, b: DATA[a : b - 1], len(DATA))
    with pytest.raises(OSError, match="short read"):
        view[0:10]


def test_a_closed_view_refuses_reads():
    view, _ = _view()
    view.close()
    with pytest.raises(ValueError):
        view[0:1]


def test_memory_filesystem_goes_through_the_same_path(tmp_path):
    """Any fsspec protocol is a scan target: memory:// needs no server and no network."""
    fsspec = pytest.importorskip("fsspec", reason="fsspec not installed (pip install 'mlaudit[remote]')")
    from fixtures.gen.fleet_corpus import build_registry
    from mlaudit.catalog import load_catalog
    from mlaudit.engine import display_prefix, scan
    from mlaudit.inputs.session import ScanOptions

    build_registry(tmp_path / "reg", 24, seed=5)
    mem = fsspec.filesystem("memory")
    for path in (tmp_path / "reg").rglob("*"):
        if path.is_file():
            mem.pipe(f"/fleet-test/{path.relative_to(tmp_path).as_posix()}", path.read_bytes())
    codes = tuple(c for c, m in load_catalog().items() if m.status != "preview")
    try:
        local = scan([tmp_path / "reg"], ScanOptions(codes=codes, jobs=1))
        remote = scan(["memory://fleet-test/reg"], ScanOptions(codes=codes, jobs=1))
    finally:
        mem.rm("/fleet-test", recursive=True)
    prefix = display_prefix(tmp_path / "reg")

    def facts(report, pre):
        return sorted((f.code, f.location.path.removeprefix(pre), f.message) for f in report.findings
                      if f.location.path not in (".", pre.rstrip("/")))

    assert facts(remote, "memory:///fleet-test/reg/") == facts(local, prefix)
    assert any(f.code in ("MLS001", "MLS002") for f in remote.findings)


def test_hf_offline_and_unknown_protocols_are_one_line_errors(capsys, monkeypatch):
    from mlaudit.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["scan", "nosuchproto://bucket/x", "--isolated"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nosuchproto://" in err
    pytest.importorskip("huggingface_hub", reason="huggingface_hub not installed")
    assert main(["scan", "hf://someone/some-model", "--isolated"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlaudit: error: hf://someone/some-model") and err.count("\n") == 1
    assert "Traceback" not in err
    assert os.environ["HF_HUB_OFFLINE"] == "1"
