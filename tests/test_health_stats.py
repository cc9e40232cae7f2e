"""One-pass tensor statistics through torch (inputs/checkpoint/torch_stats.py): each statistic against a
direct torch computation, chunk boundaries, and the safetensors reader."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from mlaudit.inputs.checkpoint import read_checkpoint  # noqa: E402
from mlaudit.inputs.checkpoint import torch_stats as ts  # noqa: E402
from mlaudit.inputs.checkpoint.layout import build_layout  # noqa: E402


def test_float_stats_match_direct_computation(monkeypatch):
    monkeypatch.setattr(ts, "CHUNK_ELEMENTS", 64)  # force many chunks, rows split across them
    g = torch.Generator().manual_seed(0)
    t = torch.randn(40, 7, generator=g)
    t[3] = 0.0
    t[17] = 0.0
    t[5, 2] = float("nan")
    t[6, 1] = float("inf")
    t[8, 0] = 0.0
    st = ts.tensor_stats("w", t)
    finite = t[torch.isfinite(t)]
    assert (st.nan, st.inf) == (1, 1)
    assert st.zeros == int((finite == 0).sum())
    assert st.dead_rows == 2 and st.rows == 40
    assert st.min == pytest.approx(float(finite.min())) and st.max == pytest.approx(float(finite.max()))
    assert st.sumsq == pytest.approx(float((finite.double() ** 2).sum()), rel=1e-6)
    # fp32 chunk reductions: accurate to ~1e-7 of the sum of magnitudes
    assert st.sum == pytest.approx(float(finite.double().sum()), abs=1e-6 * float(finite.abs().sum()))
    assert st.bf16_exact is False


def test_bf16_exactness_and_int32_fit():
    t = torch.randn(1000).to(torch.bfloat16).float()
    assert ts.tensor_stats("a", t).bf16_exact is True
    t[123] += 1e-4  # now needs fp32 mantissa bits
    assert ts.tensor_stats("a", t).bf16_exact is False
    assert ts.tensor_stats("i", torch.arange(600)).fits_int32 is True
    assert ts.tensor_stats("i", torch.tensor([0, 2**31])).fits_int32 is False
    assert ts.tensor_stats("i", torch.tensor([-(2**31), 5])).fits_int32 is True


def test_fp16_overflow_and_subnormal_counts():
    h = torch.tensor([1e-6, 2e-7, 0.0, 1.0, 3.0], dtype=torch.float16)
    st = ts.tensor_stats("h", h)
    assert st.fp16_subnormal == 2
    f = torch.tensor([1e5, -7e4, 1.0, 1e-6])
    st = ts.tensor_stats("f", f, want_subnormal=True)
    assert st.fp16_overflow == 2 and st.fp16_subnormal == 1
    assert ts.tensor_stats("f", f).fp16_subnormal is None  # only computed when asked


def test_bool_and_scalar_tensors():
    st = ts.tensor_stats("m", torch.tensor([True, False, False]))
    assert st.zeros == 2
    assert ts.tensor_stats("s", torch.tensor(42.0)).scalar == 42.0


def test_safetensors_reader_matches_safe_open_and_duplicates(tmp_path):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1)
    w = torch.randn(33, 5, generator=g)
    tensors = {"a": w, "b": w.clone(), "c": torch.randn(4, generator=g).to(torch.bfloat16),
               "d": torch.arange(10)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    info = read_checkpoint(path, "m.safetensors")
    got = dict(ts._read_safetensors(info))
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert torch.equal(got[k], v), k
    stats = ts.compute_stats(build_layout(info, None))
    assert stats.duplicates == (("a", "b"),)
    assert stats.tensors["a"].rms == pytest.approx(math.sqrt(float((w.double() ** 2).mean())))


def test_tied_tensors_are_not_duplicates_and_share_stats(tmp_path):
    w = torch.randn(8, 8)
    path = tmp_path / "tied.pt"
    torch.save({"enc.weight": w, "dec.weight": w}, path)
    info = read_checkpoint(path, "tied.pt")
    stats = ts.compute_stats(build_layout(info, None))
    assert stats.duplicates == ()
    assert stats.tensors["dec.weight"].alias_of == "enc.weight"
    assert build_layout(info, None).param_count() == 64  # tied counted once


def test_power_law_alpha_recovers_known_exponent():
    # Eigenvalues k^-1 (k = 1..400): tail exponent 1 + 1/1 = 2.
    eig = torch.arange(1, 401, dtype=torch.float64) ** -1.0
    assert ts.power_law_alpha(eig.numpy()) == pytest.approx(2.0, abs=0.25)


def test_release_keeps_values_for_mapped_and_anonymous_memory(tmp_path):
    from mlaudit.inputs.checkpoint import iter_tensors

    w = torch.randn(1024, 1024)
    path = tmp_path / "big.pt"
    torch.save({"w": w}, path)
    info = read_checkpoint(path, "big.pt")
    for _, t in iter_tensors(info):
        ts._release(t)  # file-backed: unmapped, re-read on access
        assert torch.equal(t, w)
    anon = torch.randn(1024, 1024)
    copy = anon.clone()
    ts._release(anon)  # anonymous memory: must be left alone
    assert torch.equal(anon, copy)
    assert ts._file_backed(anon.data_ptr(), anon.data_ptr() + 4096) is False


def test_streamed_safetensors_stats_equal_in_memory_stats(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.setattr(ts, "CHUNK_ELEMENTS", 100)  # many chunks, rows split across reads
    w = torch.randn(64, 30)
    w[7] = 0
    path = tmp_path / "m.safetensors"
    save_file({"fc.weight": w}, str(path))
    info = read_checkpoint(path, "m.safetensors")
    reader = ts._read_safetensors(info, stream=True)
    name, ft = next(reader)  # the handle reads from the open file: keep the generator alive
    streamed = ts.tensor_stats(name, ft)
    reader.close()
    direct = ts.tensor_stats(name, w)
    assert streamed.dead_rows == direct.dead_rows == 1
    assert (streamed.zeros, streamed.min, streamed.max) == (direct.zeros, direct.min, direct.max)
    assert streamed.sumsq == pytest.approx(direct.sumsq)


def test_quantized_and_sparse_tensors_get_statistics_not_a_crash(tmp_path):
    # count_nonzero has no QuantizedCPU kernel and sparse tensors have no storage: both made the
    # whole file inconclusive (with a 60-line dispatcher dump as the message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(torch.tensor([[0.0, 0.5], [1.0, -1.0]]), 0.5, 0, torch.qint8)
    path = tmp_path / "m.pt"
    torch.save({"q.weight": q, "adj": torch.eye(3).to_sparse(), "fc.weight": torch.ones(2, 2)}, path)
    info = read_checkpoint(path, "m.pt")
    assert not info.error_issues
    stats = ts.compute_stats(build_layout(info, None))
    assert stats.tensors["q.weight"].zeros == 1 and stats.tensors["q.weight"].max == 1.0
    assert stats.tensors["adj"].numel == 9 and stats.tensors["adj"].zeros == 6
