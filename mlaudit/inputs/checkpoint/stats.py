"""The statistics records the health rules read (one per tensor, one per checkpoint) and the
constants both implementations share (`array_stats` with numpy, `torch_stats` with torch).

What is computed: NaN/Inf counts, exact zeros, all-zero rows (dead units), norms, extremes,
whether an fp32 tensor is exactly representable in bf16, whether int64 values fit int32, fp16
overflow/subnormal counts, and (behind `--spectral`) a power-law exponent per layer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlaudit.inputs.checkpoint.layout import CheckpointLayout, strip_wrapper
from mlaudit.inputs.checkpoint.types import CheckpointInfo
from mlaudit.progress import progress

CHUNK_ELEMENTS = 1 << 18  # 1 MiB of fp32: the chunk stays in L2 cache across the reductions
FP16_MAX = 65504.0
FP16_MIN_NORMAL = 6.103515625e-05


@dataclass
class TensorStats:
    """Statistics of one tensor. Float fields are None for dtypes where they mean nothing."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    numel: int
    nan: int = 0
    inf: int = 0
    zeros: int = 0
    min: float | None = None  # over finite values
    max: float | None = None
    sum: float = 0.0
    sumsq: float = 0.0
    rows: int | None = None  # first dimension, for tensors with >= 2 dims
    dead_rows: int | None = None  # rows that are exactly zero
    bf16_exact: bool | None = None  # fp32 only: every value survives a bf16 round trip
    fits_int32: bool | None = None  # int64 only
    fp16_overflow: int | None = None  # finite |x| > 65504 (float tensors)
    fp16_subnormal: int | None = None  # 0 < |x| < 2**-14 (fp16 tensors, or all when asked)
    scalar: float | None = None  # the value of a one-element tensor
    alpha: float | None = None  # spectral power-law exponent (only with --spectral)
    alias_of: str | None = None  # same storage as another tensor: stats copied

    @property
    def finite(self) -> int:
        return self.numel - self.nan - self.inf

    @property
    def max_abs(self) -> float | None:
        if self.min is None or self.max is None:
            return None
        return max(abs(self.min), abs(self.max))

    @property
    def rms(self) -> float | None:
        return math.sqrt(self.sumsq / self.finite) if self.finite else None

    @property
    def mean(self) -> float | None:
        return self.sum / self.finite if self.finite else None

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.numel if self.numel else 0.0

    def signature(self) -> tuple:
        """Cheap identity for duplicate candidates; equality is then checked on the bytes."""
        return (self.dtype, self.shape, self.sum, self.sumsq, self.min, self.max, self.zeros, self.nan)


@dataclass(frozen=True)
class CheckpointStats:
    """A checkpoint's layout plus per-tensor statistics (keyed by tensor name)."""

    layout: CheckpointLayout
    tensors: Mapping[str, TensorStats]
    duplicates: tuple[tuple[str, ...], ...] = ()  # groups of distinct storages with equal bytes
    spectral: Mapping[str, Any] = field(default_factory=dict)  # budget/skip notes
    seconds: float = 0.0

    @property
    def info(self) -> CheckpointInfo:
        return self.layout.info


def wants_subnormal(layout: CheckpointLayout) -> bool:
    """Whether subnormal counts matter for `layout`: its paired config trains in fp16 (bf16
    keeps fp32's exponent range, so it has no fp16 subnormal problem)."""
    cfg = layout.config
    return bool(cfg and cfg.precision and "16" in cfg.precision and "bf16" not in cfg.precision)


def duplicate_candidates(stats: Mapping[str, TensorStats]) -> set[str]:
    """Tensors on distinct storages whose cheap signatures equal another's (to confirm on bytes)."""
    by_sig: dict[tuple, list[str]] = {}
    for st in stats.values():
        if st.alias_of is None and st.numel > 1:
            by_sig.setdefault(st.signature(), []).append(st.name)
    return {n for names in by_sig.values() if len(names) > 1 for n in names}


@dataclass(frozen=True)
class PassItem:
    """One tensor as a statistics backend hands it to `stats_pass`."""

    name: str
    tensor: Any  # the backend's own handle (a numpy StoredTensor, a torch tensor, ...)
    alias_key: Hashable | None  # equal keys: the same storage view (None: never an alias)
    nbytes: int


def stats_pass(
    layout: CheckpointLayout,
    items: Iterable[PassItem],
    *,
    measure: Callable[[PassItem, bool, bool], TensorStats],
    spectral_of: Callable[[TensorStats, PassItem, int], str | None],
    equal_bytes: Callable[[set[str]], list[tuple[str, ...]]],
    done_with: Callable[[PassItem], None] | None = None,
    spectral: bool = False,
    spectral_max_elements: int = 16_000_000,
    spectral_budget_s: float = 60.0,
) -> CheckpointStats:
    """The one pass both backends share: every tensor measured once (`measure(item,
    want_subnormal, rows)`), a view of a storage already seen copies its statistics, the
    spectral metric for model tensors within its time budget (`spectral_of`), progress on a
    terminal, then duplicate candidates confirmed on their bytes (`equal_bytes`).
    `done_with(item)` runs after each measured tensor (a backend may free its pages)."""
    started = time.perf_counter()
    info = layout.info
    want_sub = wants_subnormal(layout)
    model_names = {m.info.name for m in layout.model}
    stats: dict[str, TensorStats] = {}
    seen: dict[Hashable, str] = {}
    notes: dict[str, Any] = {"enabled": spectral, "skipped": [], "budget_s": spectral_budget_s}
    spectral_started: float | None = None
    done = 0
    with progress(f"stats {info.rel}", total=sum(t.nbytes for t in info.tensors) >> 20, unit="MB") as bar:
        for item in items:
            name, key = item.name, item.alias_key
            if key is not None and key in seen:
                alias = stats[seen[key]]
                stats[name] = TensorStats(**{**alias.__dict__, "name": name, "alias_of": seen[key]})
                continue
            st = measure(item, want_sub, name in model_names)
            if spectral and name in model_names:
                spectral_started = spectral_started or time.perf_counter()
                if time.perf_counter() - spectral_started > spectral_budget_s:
                    notes["skipped"].append(f"{name}: time budget spent")
                else:
                    note = spectral_of(st, item, spectral_max_elements)
                    if note:
                        notes["skipped"].append(note)
            stats[name] = st
            if key is not None:
                seen[key] = name
            done += item.nbytes
            bar.advance((done >> 20) - bar.completed, label=name)
            if done_with is not None:
                done_with(item)
    candidates = duplicate_candidates(stats)
    duplicates = tuple(equal_bytes(candidates)) if candidates else ()
    return CheckpointStats(layout, stats, duplicates, notes, time.perf_counter() - started)


def equal_groups(names: Iterable[str], same: Callable[[str, str], bool]) -> list[tuple[str, ...]]:
    """Groups (of two or more, sorted) of `names` that `same` says are equal to the group's first."""
    groups: list[list[str]] = []
    for name in sorted(names):
        for g in groups:
            if same(g[0], name):
                g.append(name)
                break
        else:
            groups.append([name])
    return [tuple(g) for g in groups if len(g) > 1]


@dataclass(frozen=True)
class GradEstimate:
    """One parameter's gradient estimate from its optimizer state."""

    idx: int
    label: str
    numel: int
    rms: float | None  # None: no state (never stepped)
    step: float | None
    sum_sq: float | None  # bias-corrected sum of v over the tensor = E||g||^2 of this tensor


def grad_estimates(stats: CheckpointStats) -> list[GradEstimate]:
    """Per optimizer index: RMS gradient from bias-corrected exp_avg_sq (Adam-family only)."""
    opt = stats.layout.optimizer
    if opt is None or opt.kind != "adam-like":
        return []
    out = []
    for idx in opt.param_ids:
        per = opt.state.get(idx, {})
        v = per.get("exp_avg_sq")
        if v is None:
            out.append(GradEstimate(idx, opt.label(idx), 0, None, None, None))
            continue
        vs = stats.tensors.get(v.name)
        step_t = per.get("step")
        step = stats.tensors[step_t.name].scalar if step_t is not None and step_t.name in stats.tensors \
            else opt.scalar_steps.get(idx)
        group = opt.groups[opt.group_of.get(idx, 0)] if opt.groups else {}
        betas = group.get("betas") or (0.9, 0.999)
        beta2 = float(betas[1]) if len(betas) > 1 else 0.999
        correction = 1 - beta2 ** step if step and step > 0 else 1.0
        if vs is None or vs.nan or vs.inf or not vs.numel:
            continue  # non-finite moments are reported by MLC011
        mean_v = max(vs.sum, 0.0) / vs.numel / correction
        out.append(GradEstimate(idx, opt.label(idx), vs.numel, math.sqrt(mean_v), step,
                                mean_v * vs.numel))
    return out


def _sig(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else float(f"{value:.{digits}g}")


def layer_rows(stats: CheckpointStats) -> list[dict[str, Any]]:
    """One row per model tensor (file order, tied copies once) with the numbers the HTML
    report draws: bytes, L2 norm and standard deviation over finite values, zero fraction,
    dead rows (all-zero output units), NaN/Inf counts, and the Adam-estimated gradient norm
    (sqrt of the bias-corrected sum of exp_avg_sq) where the optimizer's moments map to it."""
    opt = stats.layout.optimizer
    grads = {opt.names[g.idx]: math.sqrt(g.sum_sq) for g in grad_estimates(stats)
             if g.sum_sq is not None and opt is not None and g.idx in opt.names}
    rows = []
    for m in stats.layout.model:
        st = stats.tensors.get(m.info.name)
        if st is None or m.tied_to is not None:
            continue
        mean = st.mean
        var = st.sumsq / st.finite - mean * mean if st.finite and mean is not None else None
        rows.append({
            "name": st.name,
            "key": strip_wrapper(m.key),
            "dtype": st.dtype,
            "shape": list(st.shape),
            "bytes": m.info.nbytes,
            "norm": _sig(math.sqrt(st.sumsq)) if st.finite else None,
            "std": _sig(math.sqrt(max(var, 0.0))) if var is not None else None,
            "zero_fraction": _sig(st.zero_fraction, 4),
            "rows": st.rows,
            "dead_rows": st.dead_rows,
            "nan": st.nan,
            "inf": st.inf,
            "grad_norm": _sig(grads.get(st.name)),
        })
    return rows
