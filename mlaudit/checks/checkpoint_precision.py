"""Precision waste (MLC007-MLC010): fp64 tensors, fp32 tensors exactly representable in
bf16, int64 values that fit int32, fp16 overflow/underflow risk."""

from __future__ import annotations

from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint.stats import FP16_MAX, CheckpointStats
from mlaudit.model import Finding, Location
from mlaudit.units import format_bytes


def _model_names(stats: CheckpointStats) -> set[str]:
    return {m.info.name for m in stats.layout.model}


@rule("MLC007", needs="checkpoint_stats")
def float64_tensor(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    min_el = ctx.params.min_elements
    for st in stats.tensors.values():
        if st.dtype == "float64" and st.numel >= min_el and st.alias_of is None:
            yield ctx.finding(
                f"float64 tensor of {st.numel:,} elements ({format_bytes(st.numel * 8)}): "
                f"half the bytes in fp32, a quarter in bf16; GPUs run fp64 far slower",
                Location(stats.info.rel, pointer=st.name),
                evidence={"elements": st.numel, "bytes": st.numel * 8,
                          "max_abs": st.max_abs, "fp32_bytes_saved": st.numel * 4},
            )


@rule("MLC008", needs="checkpoint_stats")
def lossless_bf16(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    names = _model_names(stats)
    fp32 = [st for st in stats.tensors.values()
            if st.dtype == "float32" and st.name in names and st.alias_of is None and st.numel > 1]
    total = sum(st.numel * 4 for st in fp32)
    exact = [st for st in fp32 if st.bf16_exact and st.zeros < st.numel]
    exact_bytes = sum(st.numel * 4 for st in exact)
    if not total or exact_bytes < ctx.params.min_bytes:
        return
    share = exact_bytes / total
    if share < ctx.params.min_share:
        return
    yield ctx.finding(
        f"{len(exact)} of {len(fp32)} fp32 model tensors ({format_bytes(exact_bytes)}, {share:.0%} of fp32 "
        "bytes) hold only bf16-representable values: storing them as bf16 is lossless and "
        f"saves {format_bytes(exact_bytes / 2)}",
        Location(stats.info.rel),
        evidence={"tensors": len(exact), "fp32_tensors": len(fp32), "lossless_bytes": exact_bytes,
                  "share": round(share, 4), "examples": [st.name for st in exact[:5]]},
        fix_hint=f"{ctx.fix_command(stats.info.rel, 'cast-bf16')}  "
                 "(lossless for these tensors; its parity check verifies)",
    )


@rule("MLC009", needs="checkpoint_stats")
def int64_fits_int32(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    min_el = ctx.params.min_elements
    for st in stats.tensors.values():
        if st.dtype == "int64" and st.fits_int32 and st.numel >= min_el and st.alias_of is None:
            yield ctx.finding(
                f"int64 tensor of {st.numel:,} elements whose values lie in [{st.min:.0f}, {st.max:.0f}] "
                f"and fit int32: {format_bytes(st.numel * 4)} wasted",
                Location(stats.info.rel, pointer=st.name),
                evidence={"elements": st.numel, "min": st.min, "max": st.max, "wasted_bytes": st.numel * 4},
            )


@rule("MLC010", needs="checkpoint_stats")
def fp16_range_risk(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    cfg = stats.layout.config
    prec = (cfg.precision or "") if cfg else ""
    fp16_training = "16" in prec and "bf16" not in prec
    max_sub = ctx.params.max_subnormal_fraction
    names = _model_names(stats)
    for st in stats.tensors.values():
        if st.alias_of is not None or st.name not in names:
            continue
        if st.dtype != "float16" and not (fp16_training and st.dtype in ("float32", "float64")):
            continue
        nonzero = st.finite - st.zeros
        sub_frac = (st.fp16_subnormal or 0) / nonzero if nonzero else 0.0
        over = st.fp16_overflow or 0
        if st.dtype == "float16":
            over = st.inf  # an fp16 tensor that already overflowed holds inf
        if over == 0 and sub_frac <= max_sub:
            continue
        why = []
        if over:
            why.append(f"{over:,} values beyond the fp16 range ±{FP16_MAX:g}")
        if sub_frac > max_sub:
            why.append(f"{sub_frac:.1%} of non-zero values below fp16's normal range (2^-14)")
        source = "stored as fp16" if st.dtype == "float16" else f"config precision {prec}"
        yield ctx.finding(
            f"fp16 range risk ({source}): {'; '.join(why)}; bf16 keeps fp32's range",
            Location(stats.info.rel, pointer=st.name),
            evidence={"overflow": over, "subnormal_fraction": round(sub_frac, 6),
                      "max_abs": st.max_abs, "dtype": st.dtype, "precision": prec or None},
            fix_hint=f"{ctx.fix_command(stats.info.rel, 'cast-bf16')}  "
                     "(bf16, unless fp16 was validated for this model)",
        )
