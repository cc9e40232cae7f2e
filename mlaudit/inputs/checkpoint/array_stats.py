"""Checkpoint statistics with numpy: the same `TensorStats` the health rules read, computed
over the storages `formats.arrays` locates, without importing torch.

One pass per tensor, chunk by chunk (chunks of CHUNK_ELEMENTS whole rows, the same chunking
as the torch implementation so that per-chunk float32 reductions agree with it), every
reduction on a chunk while it is in CPU cache. Float chunks are float32 (float64 stays):
bfloat16 and float8 are widened through their bit layouts (`arrays.as_float32`). Sums are
accumulated across chunks in Python floats (double).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlaudit.inputs.checkpoint.arrays import FLOATS, StoredTensor, as_float32, iter_stored
from mlaudit.inputs.checkpoint.layout import CheckpointLayout
from mlaudit.inputs.checkpoint.stats import (
    CHUNK_ELEMENTS,
    FP16_MAX,
    FP16_MIN_NORMAL,
    CheckpointStats,
    PassItem,
    TensorStats,
    equal_groups,
    stats_pass,
)


class _Scratch:
    """Reused work buffers (one chunk each), so a pass allocates nothing per chunk."""

    def __init__(self) -> None:
        self.u32 = np.empty(CHUNK_ELEMENTS, dtype=np.uint32)

    def low_halves(self, f32: Any) -> bool:
        """Whether any float32 in `f32` has non-zero low 16 bits (lost by a bf16 cast)."""
        bits = f32.view(np.uint32)
        if self.u32.size < bits.size:
            self.u32 = np.empty(bits.size, dtype=np.uint32)
        out = self.u32[: bits.size]
        np.bitwise_and(bits, 0xFFFF, out=out)
        return bool(out.any())


@np.errstate(over="ignore", invalid="ignore")  # inf/nan sums are detected and redone below
def _accumulate(st: TensorStats, chunk: Any, rows: int | None, want_subnormal: bool,
                scratch: _Scratch) -> None:
    """Fold one 1-D chunk (storage dtype; `rows` whole rows when counting dead rows) into `st`."""
    n = chunk.size
    if n == 0:
        return
    dt = st.dtype
    if dt == "bool":
        nz = int(np.count_nonzero(chunk))
        st.zeros += n - nz
        st.sum += nz
        return
    if dt not in FLOATS:
        nz = int(np.count_nonzero(chunk))
        st.zeros += n - nz
        lo, hi = float(chunk.min()), float(chunk.max())
        st.min = lo if st.min is None else min(st.min, lo)
        st.max = hi if st.max is None else max(st.max, hi)
        st.sum += float(chunk.sum(dtype=np.float64))
        if rows is not None and nz < n:
            st.dead_rows = (st.dead_rows or 0) + int((~chunk.reshape(rows, -1).any(axis=1)).sum())
        return
    f = as_float32(chunk, dt)
    if dt == "float32" and st.bf16_exact and scratch.low_halves(f):
        st.bf16_exact = False
    sq = float(np.dot(f, f))
    lo, hi = float(f.min()), float(f.max())
    if not (math.isfinite(sq) and math.isfinite(lo) and math.isfinite(hi)):
        nan_mask = np.isnan(f)
        nan = int(nan_mask.sum())
        inf = int(np.isinf(f).sum())
        st.nan += nan
        st.inf += inf
        finite = f[np.isfinite(f)]
        # (NaN and Inf != 0, so rows holding them are never "dead")
        if finite.size == 0:
            return
        # float64 here: finite values above ~1.8e19 overflow a float32 sum of squares.
        wide = finite.astype(np.float64)
        sq = float(np.dot(wide, wide))
        lo, hi = float(finite.min()), float(finite.max())
        nz = int(np.count_nonzero(finite))
        count = finite.size
        st.sum += float(finite.sum())
    else:
        nz = int(np.count_nonzero(f))
        count = n
        st.sum += float(f.sum())
    st.sumsq += sq
    st.min = lo if st.min is None else min(st.min, lo)
    st.max = hi if st.max is None else max(st.max, hi)
    st.zeros += count - nz
    if rows is not None and nz < count:
        st.dead_rows = (st.dead_rows or 0) + int((~(f.reshape(rows, -1) != 0).any(axis=1)).sum())
    values = f if count == n else f[np.isfinite(f)]
    if max(abs(lo), abs(hi)) > FP16_MAX:
        st.fp16_overflow = (st.fp16_overflow or 0) + int((np.abs(values) > FP16_MAX).sum())
    if dt == "float16" or want_subnormal:
        a = np.abs(values)
        st.fp16_subnormal = (st.fp16_subnormal or 0) + int(((a > 0) & (a < FP16_MIN_NORMAL)).sum())


def tensor_stats(t: StoredTensor, *, want_subnormal: bool = False, rows: bool = True,
                 scratch: _Scratch | None = None) -> TensorStats:
    """All statistics of one stored tensor in one chunked pass."""
    scratch = scratch or _Scratch()
    shape, numel = t.shape, t.numel
    st = TensorStats(t.name, t.dtype, shape, numel)
    if t.dtype == "float32":
        st.bf16_exact = True
    if t.dtype.startswith("complex") or numel == 0:
        return st
    if t.contiguous:
        def elements(start: int, count: int) -> Any:
            return t.read(start, count)
    else:  # a strided view: materialized once (bounded by its storage)
        flat = t.full().reshape(-1)

        def elements(start: int, count: int) -> Any:
            return flat[start:start + count]

    if numel == 1:
        one = elements(0, 1)
        # as float32, like the torch implementation (`float(t[0].float())`)
        st.scalar = float(bool(one[0])) if t.dtype == "bool" else float(
            (as_float32(one, t.dtype) if t.dtype in FLOATS else one).astype(np.float32)[0])
    if rows and len(shape) >= 2 and shape[0] > 0:
        st.rows = shape[0]
        st.dead_rows = 0
        per_row = max(1, numel // shape[0])
        step = max(1, CHUNK_ELEMENTS // per_row)  # whole rows per chunk
        for i in range(0, shape[0], step):
            n_rows = min(step, shape[0] - i)
            _accumulate(st, elements(i * per_row, n_rows * per_row), n_rows, want_subnormal, scratch)
    else:
        for i in range(0, numel, CHUNK_ELEMENTS):
            _accumulate(st, elements(i, min(CHUNK_ELEMENTS, numel - i)), None, want_subnormal, scratch)
    if st.dtype == "int64":
        st.fits_int32 = st.min is None or st.max is None or (st.min >= -(2**31) and st.max < 2**31)
    return st


def power_law_alpha(eigs: Any) -> float | None:
    """Power-law exponent of an eigenvalue spectrum's tail (continuous MLE, xmin chosen by
    the smallest Kolmogorov-Smirnov distance over candidate quantiles; Clauset et al. 2009)."""
    eigs = np.asarray(eigs, dtype=np.float64)
    ev = np.sort(eigs[eigs > 0])
    n = ev.size
    if n < 10:
        return None
    best: tuple[float, float] | None = None
    for q in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        tail = ev[int(q * n):]
        if tail.size < 5:
            break
        logs = float(np.log(tail / tail[0]).sum())
        if logs <= 0:
            continue
        alpha = 1 + tail.size / logs
        emp = np.arange(tail.size, dtype=np.float64) / tail.size
        model = 1 - (tail / tail[0]) ** (1 - alpha)
        ks = float(np.abs(emp - model).max())
        if best is None or ks < best[0]:
            best = (ks, alpha)
    return None if best is None else best[1]


def _spectral(st: TensorStats, t: StoredTensor, max_elements: int) -> str | None:
    if len(t.shape) < 2 or t.dtype not in FLOATS or st.nan or st.inf or not st.numel:
        return None
    rows = t.shape[0]
    cols = st.numel // rows
    if min(rows, cols) < 16:
        return None
    if st.numel > max_elements:
        return f"{st.name}: {st.numel:,} elements above the spectral cap {max_elements:,}"
    w = as_float32(t.full().reshape(-1), t.dtype).astype(np.float64).reshape(rows, cols)
    sv = np.linalg.svd(w, compute_uv=False)
    st.alpha = power_law_alpha(sv**2)
    return None


def _equal_bytes(layout: CheckpointLayout, names: set[str]) -> list[tuple[str, ...]]:
    """Groups of tensors among `names` whose bytes are exactly equal."""
    held: dict[str, StoredTensor] = {}
    data: dict[str, Any] = {}
    for t in iter_stored(layout.info):
        if t.name in names:
            held[t.name] = t
            data[t.name] = t.full()

    def same(x: str, y: str) -> bool:
        a, b = held[x], held[y]
        return a.dtype == b.dtype and a.shape == b.shape and data[x].tobytes() == data[y].tobytes()

    return equal_groups(held, same)


def compute_stats(layout: CheckpointLayout, *, spectral: bool = False,
                  spectral_max_elements: int = 16_000_000,
                  spectral_budget_s: float = 60.0) -> CheckpointStats:
    """Read every tensor once and compute its statistics (numpy; no torch)."""
    scratch = _Scratch()
    # an empty tensor is never an alias: its storage key says nothing
    items = (PassItem(t.name, t, t.alias_key if t.numel else None, t.nbytes)
             for t in iter_stored(layout.info))
    return stats_pass(
        layout, items,
        measure=lambda item, want_sub, rows: tensor_stats(item.tensor, want_subnormal=want_sub, rows=rows,
                                                          scratch=scratch),
        spectral_of=lambda st, item, cap: _spectral(st, item.tensor, cap),
        equal_bytes=lambda names: _equal_bytes(layout, names),
        spectral=spectral, spectral_max_elements=spectral_max_elements, spectral_budget_s=spectral_budget_s,
    )
