"""Gradient health. Without data (MLG001-MLG005): Adam/AdamW second moments in the
checkpoint, bias-corrected with the stored step count, give a per-parameter RMS gradient
estimate, sqrt(mean(exp_avg_sq) / (1 - beta2**step)). With the model (`--run-model`,
MLG010-MLG014): one forward+backward on a synthetic batch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint.stats import CheckpointStats, GradEstimate, grad_estimates
from mlaudit.inputs.model_probe import ModelProbe
from mlaudit.inputs.training_config import TrainingConfig
from mlaudit.model import Finding, Location


def _loc(stats: CheckpointStats, label: str) -> Location:
    return Location(stats.info.rel, pointer=label)


def _mapping_note(stats: CheckpointStats) -> str:
    problem = stats.layout.optimizer.mapping_problem if stats.layout.optimizer else None
    return f" (names unavailable: {problem})" if problem else ""


@rule("MLG001", needs="checkpoint_stats")
def no_gradient_state(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    est = grad_estimates(stats)
    stepped = [e for e in est if e.rms]
    if not stepped:
        return  # nothing was trained yet: a fresh optimizer is not a finding
    for e in est:
        if e.rms is None or e.rms == 0.0:
            what = ("has no optimizer state at all (never received a gradient)" if e.rms is None
                    else "has an exp_avg_sq of exact zeros (every gradient it received was 0)")
            yield ctx.finding(
                f"parameter {what} while {len(stepped)} other parameters were updated: it is unused, "
                f"dead, or frozen by mistake{_mapping_note(stats)}",
                _loc(stats, e.label),
                evidence={"optimizer_index": e.idx, "updated_parameters": len(stepped),
                          "step": e.step, "elements": e.numel},
            )


def _peer_ratios(stats: CheckpointStats) -> tuple[list[GradEstimate], float | None]:
    est = [e for e in grad_estimates(stats) if e.rms]
    if len(est) < 3:
        return est, None
    return est, statistics.median(e.rms for e in est)


def _peer_outliers(
    stats: CheckpointStats, ctx: RuleContext, limit: float, vanishing: bool
) -> Iterator[Finding]:
    """Parameters whose estimated RMS gradient is below (vanishing) or above (exploding)
    `limit` times the median of their peers."""
    est, med = _peer_ratios(stats)
    if not med:
        return
    what, fmt = ("vanishing", ".2g") if vanishing else ("exploding", ".3g")
    for e in est:
        ratio = e.rms / med
        if (ratio < limit) if vanishing else (ratio > limit):
            yield ctx.finding(
                f"estimated RMS gradient {e.rms:.3g} is {ratio:{fmt}}x the median {med:.3g} of "
                f"{len(est)} parameters (limit {limit:g}x): {what} gradient{_mapping_note(stats)}",
                _loc(stats, e.label),
                evidence={"rms_grad": e.rms, "median_rms_grad": med, "ratio": ratio,
                          "step": e.step, "optimizer_index": e.idx},
            )


@rule("MLG002", needs="checkpoint_stats")
def vanishing_gradient(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    yield from _peer_outliers(stats, ctx, ctx.params.min_ratio, vanishing=True)


@rule("MLG003", needs="checkpoint_stats")
def exploding_gradient(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    yield from _peer_outliers(stats, ctx, ctx.params.max_ratio, vanishing=False)


def _norm_against_clip(stats: CheckpointStats) -> tuple[float, TrainingConfig] | None:
    """(global gradient norm estimated from Adam's second moments, the config), when the
    config sets a positive max grad norm and the moments allow an estimate."""
    cfg = stats.layout.config
    if cfg is None or not cfg.grad_clip or cfg.grad_clip <= 0:
        return None
    est = [e for e in grad_estimates(stats) if e.sum_sq is not None]
    if not est:
        return None
    return math.sqrt(sum(e.sum_sq for e in est)), cfg


@rule("MLG004", needs="checkpoint_stats")
def clipping_active(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    found = _norm_against_clip(stats)
    if found is None:
        return
    norm, cfg = found
    # Adam sees the clipped gradients, so E||g||^2 from its moments sits at the clip norm
    # when clipping fires on most recent steps (~1/(1-beta2) steps of memory).
    ratio = norm / cfg.grad_clip
    # Above the clip the gradients were not clipped at all: MLG006's case.
    if ctx.params.min_ratio <= ratio <= ctx.params.max_ratio:
        yield ctx.finding(
            f"estimated global gradient norm {norm:.3g} (RMS over recent steps, from Adam's second "
            f"moments) is {ratio:.2f}x the configured max grad norm {cfg.grad_clip:g}: clipping was "
            "likely active on most steps, so the effective step is set by the clip, not the gradient",
            Location(stats.info.rel),
            evidence={"estimated_grad_norm": norm, "max_grad_norm": cfg.grad_clip, "ratio": ratio,
                      "config": cfg.rel},
        )




@rule("MLG006", needs="checkpoint_stats")
def clipping_not_applied(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    found = _norm_against_clip(stats)
    if found is None:
        return
    norm, cfg = found
    # Clipped gradients never exceed the max norm, and the bias-corrected second moments
    # average the squared norms of recent steps: an estimate above the clip proves that
    # (at least some of) those gradients were not clipped.
    ratio = norm / cfg.grad_clip
    if ratio > ctx.params.min_ratio:
        yield ctx.finding(
            f"estimated global gradient norm {norm:.3g} from Adam's second moments is {ratio:.3g}x "
            f"the configured max grad norm {cfg.grad_clip:g}: the gradients the optimizer saw were "
            "not clipped (clipping not called, called after optimizer.step, or a config mismatch)",
            Location(stats.info.rel),
            evidence={"estimated_grad_norm": norm, "max_grad_norm": cfg.grad_clip, "ratio": ratio,
                      "config": cfg.rel},
        )


@rule("MLG005", needs="checkpoint_stats")
def update_too_large(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    # Adam's per-element step is about lr * m/sqrt(v), bounded near lr: lr / RMS(weight)
    # bounds the relative change of a layer per step. The peak lr comes from the config (the
    # optimizer's stored lr is the scheduled value at save time); failing that, torch's
    # schedulers keep the peak as `initial_lr` in the param group.
    opt = stats.layout.optimizer
    if opt is None or opt.kind != "adam-like" or not opt.names:
        return
    cfg = stats.layout.config
    limit = ctx.params.max_ratio
    by_key = {m.info.name: m for m in stats.layout.params}
    for idx, key in opt.names.items():
        group = opt.groups[opt.group_of.get(idx, 0)] if opt.groups else {}
        if cfg and cfg.lr:
            lr, source = cfg.lr, f"lr in {cfg.rel}"
        else:
            lr, source = group.get("initial_lr"), "initial_lr in the optimizer"
        m = by_key.get(key)
        st = stats.tensors.get(m.info.name) if m else None
        if not lr or st is None or len(st.shape) < 2 or not st.rms:
            continue
        ratio = float(lr) / st.rms
        if ratio > limit:
            yield ctx.finding(
                f"peak lr {float(lr):g} ({source}) is {ratio:.2g}x the weight RMS {st.rms:.3g}: each "
                f"Adam step can move this layer by about {ratio:.0%} of its scale (limit {limit:g})",
                _loc(stats, key),
                evidence={"peak_lr": float(lr), "weight_rms": st.rms, "ratio": ratio, "lr_source": source},
            )


@rule("MLG010", needs="model_probe")
def nonfinite_gradients(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    rel = probe.rel
    for name, bad in probe.nonfinite_grads.items():
        yield ctx.finding(
            f"gradient has {bad:,} NaN/Inf values after one forward+backward on a synthetic batch "
            f"(weights {probe.loaded_weights})",
            Location(rel, pointer=name), evidence={"nonfinite": bad},
        )


@rule("MLG011", needs="model_probe")
def parameter_without_gradient(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    rel = probe.rel
    if probe.error and not probe.grad_norms:
        return
    for name in probe.no_grad:
        yield ctx.finding(
            "parameter requires grad but received none in a forward+backward pass: it is not "
            "connected to the output (unused module) yet the optimizer will carry it",
            Location(rel, pointer=name), evidence={"requires_grad": True},
        )


@rule("MLG012", needs="model_probe")
def dead_layer(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    rel = probe.rel
    for name, units in probe.dead_layers.items():
        yield ctx.finding(
            f"every one of {units:,} units of this ReLU is zero for all examples of the synthetic "
            "batch: the whole layer is dead and blocks every gradient below it",
            Location(rel, pointer=name), evidence={"units": units, "weights": probe.loaded_weights},
        )


@rule("MLG013", needs="model_probe")
def gradient_spread(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    rel = probe.rel
    norms = {k: v for k, v in probe.grad_norms.items() if v > 0}
    if len(norms) < 2:
        return
    lo = min(norms, key=norms.get)
    hi = max(norms, key=norms.get)
    spread = norms[hi] / norms[lo]
    if spread > ctx.params.max_spread:
        yield ctx.finding(
            f"per-parameter gradient norms span {spread:.3g}x ({lo}: {norms[lo]:.3g} to {hi}: "
            f"{norms[hi]:.3g}) on a synthetic batch: badly conditioned, one learning rate cannot fit both",
            Location(rel, pointer=lo),
            evidence={"spread": spread, "min_norm": norms[lo], "max_norm": norms[hi]},
        )


@rule("MLG014", needs="model_probe")
def model_run_failed(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    rel = probe.rel
    if probe.error:
        yield ctx.finding(
            f"--run-model was allowed but {probe.target} could not be measured: {probe.error}",
            Location(rel), evidence={"target": probe.target},
        )
