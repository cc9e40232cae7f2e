"""The statistics records the health rules read (one per tensor, one per checkpoint) and the
constants both implementations share (`array_stats` with numpy, `torch_stats` with torch).

What is computed: NaN/Inf counts, exact zeros, all-zero rows (dead units), norms, extremes,
whether an fp32 tensor is exactly representable in bf16, whether int64 values fit int32, fp16
overflow/subnormal counts, and (behind `--spectral`) a power-law exponent per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlaudit.inputs.checkpoint.layout import CheckpointLayout
from mlaudit.inputs.checkpoint.types import CheckpointInfo

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


def duplicate_candidates(stats: Mapping[str, TensorStats]) -> set[str]:
    """Tensors on distinct storages whose cheap signatures equal another's (to confirm on bytes)."""
    by_sig: dict[tuple, list[str]] = {}
    for st in stats.values():
        if st.alias_of is None and st.numel > 1:
            by_sig.setdefault(st.signature(), []).append(st.name)
    return {n for names in by_sig.values() if len(names) > 1 for n in names}


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
