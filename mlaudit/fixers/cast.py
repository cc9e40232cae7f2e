"""cast-bf16 / cast-fp16 (unsafe): store floating-point weights in 16 bits (half the size).

fp16 has a narrow range: a weight above 65504 becomes inf, so the cast refuses such tensors
(an overflow budget failure); values that would flush to zero are counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlaudit.fixers import fixer
from mlaudit.fixers.base import FixState, StepResult

FP16_MAX = 65504.0
FP16_TINY = 6.1e-5  # smallest normal fp16


@dataclass(frozen=True)
class CastConfig:
    """`min_numel`: tensors smaller than this stay fp32 (norm scales, biases are cheap and sensitive)."""

    min_numel: int = 0


def _cast(state: FixState, config: CastConfig, name: str, dtype_name: str) -> StepResult:
    import torch

    dtype = getattr(torch, dtype_name)
    cast = 0
    flushed = 0
    worst_rel = 0.0
    out = {}
    for key, t in state.tensors.items():
        if t.dtype not in (torch.float32, torch.float64) or t.numel() < config.min_numel:
            out[key] = t
            continue
        if dtype is torch.float16:
            peak = float(t.abs().max()) if t.numel() else 0.0
            if peak > FP16_MAX:
                return StepResult(
                    name,
                    "unsafe",
                    "failed",
                    f"{key} has |w| = {peak:.4g} > fp16 max {FP16_MAX}",
                    budget_failure=f"fp16 overflow budget failed: tensor {key} max |w| "
                    f"{peak:.4g} exceeds 65504 by {peak - FP16_MAX:.4g}",
                )
            flushed += int(((t != 0) & (t.abs() < FP16_TINY)).sum())
        c = t.to(dtype)
        if t.numel():
            denom = float(t.abs().max()) or 1.0
            worst_rel = max(worst_rel, float((c.float() - t.float()).abs().max()) / denom)
        out[key] = c
        cast += 1
    if not cast:
        return StepResult(name, "unsafe", "skipped", "no fp32/fp64 tensors to cast")
    state.tensors = out
    state.state_dirty = True
    state.cast_dtype = dtype_name
    detail = (
        f"{cast} tensors stored as {dtype_name}; worst per-tensor error {worst_rel:.2e} "
        "of the tensor's max |w|"
    )
    if dtype is torch.float16 and flushed:
        detail += f"; {flushed} tiny values below fp16's normal range"
    return StepResult(
        name,
        "unsafe",
        "applied",
        detail,
        evidence={"tensors_cast": cast, "worst_relative_error": worst_rel, "subnormal_or_flushed": flushed},
    )


@fixer(
    "cast-bf16",
    "unsafe",
    "state",
    "store fp32 weights as bfloat16: half the size, ~3 significant digits",
    CastConfig,
    after=("strip-optimizer", "strip-prefix", "dedupe", "prune"),
    conflicts=("cast-fp16",),
)
def cast_bf16(state: FixState, config: CastConfig) -> StepResult:
    """Cast floating tensors to bfloat16."""
    return _cast(state, config, "cast-bf16", "bfloat16")


@fixer(
    "cast-fp16",
    "unsafe",
    "state",
    "store fp32 weights as float16: half the size; refuses weights beyond fp16 range (overflow check)",
    CastConfig,
    after=("strip-optimizer", "strip-prefix", "dedupe", "prune"),
    conflicts=("cast-bf16",),
)
def cast_fp16(state: FixState, config: CastConfig) -> StepResult:
    """Cast floating tensors to float16 after an overflow check."""
    return _cast(state, config, "cast-fp16", "float16")
