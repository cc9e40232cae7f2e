"""MLH: training-run history rules, judged on the curves a run logged (see rules/run-history.yaml).

Each rule calls one detector from `_history_signals` with the thresholds from its params,
turns a `Signal` into a finding at the history file (pointer: the series judged) and a
`TooShort` into a skip note (shown with -v). Evidence carries the numbers, the step, and the
judged curve itself (`curve`, at most CURVE_POINTS points, the marked steps always kept) so a
report can draw it with the finding marked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from mlaudit.checks import _history_signals as sig
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.history import Series, json_number
from mlaudit.inputs.history.load import PairedRun
from mlaudit.model import Finding, Location

CURVE_POINTS = 400


def curve(series: Series, marks: tuple[int, ...] = ()) -> dict[str, Any]:
    """The series as report data: evenly thinned to CURVE_POINTS points, marked steps kept."""
    n = len(series)
    keep = set(np.linspace(0, n - 1, min(n, CURVE_POINTS)).astype(int).tolist()) if n else set()
    index = {s: i for i, s in enumerate(series.steps)}
    keep.update(index[m] for m in marks if m in index)
    order = sorted(keep)
    return {
        "series": series.name,
        "points": n,
        "steps": [series.steps[i] for i in order],
        "values": [json_number(series.values[i]) for i in order],
    }


def _emit(
    run: PairedRun, ctx: RuleContext, result: sig.Result, series: Series | None, message: str
) -> Iterator[Finding]:
    h = run.history
    if isinstance(result, sig.TooShort):
        ctx.skip(Location(h.rel), f"not judged: {result.reason}")
        return
    if result is None:
        return
    evidence: dict[str, Any] = {
        "source": h.source,
        "kind": result.kind,
        "step": result.step,
        **result.evidence,
    }
    evidence["marks"] = list(result.marks)
    if series is not None:
        evidence["curve"] = curve(series, result.marks)
    yield ctx.finding(
        message,
        Location(h.rel, pointer=series.name if series else None),
        evidence=evidence,
        fix_hint=ctx.meta.instead or None,
        key=result.kind,
    )


def _p(ctx: RuleContext, *names: str) -> dict[str, Any]:
    """The named params (YAML spelling) as detector keyword arguments."""
    return {n.replace("-", "_"): getattr(ctx.params, n.replace("-", "_")) for n in names}


@rule("MLH001", needs="run_history")
def overfitting(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    h = run.history
    evals, train = h.role("eval_loss"), h.role("train_loss")
    res = sig.overfitting(train, evals, **_p(ctx, "min-evals", "min-rise", "sustain-evals", "min-train-drop"))
    selected = _selection_metric(h)
    if isinstance(res, sig.Signal) and selected and selected[1] > res.step:
        # e.g. Whisper fine-tunes: eval loss climbs (over-confidence) while WER keeps improving; the run
        # picks checkpoints by that metric, so a rising loss alone does not show worse generalization
        ctx.skip(Location(h.rel), f"not judged: {evals.name} rose after step {res.step}, but the run's own "
                 f"selection metric {selected[0]} was best later (step {selected[1]})")
        return
    if isinstance(res, sig.Signal):
        e = res.evidence
        msg = (
            f"{evals.name} rose {e['eval_rise']:.0%} from its minimum {e['eval_min']:g} at step {res.step} "
            f"to {e['eval_last']:g} at step {e['last_step']} while {train.name} fell from "
            f"{e['train_at_min']:g} to {e['train_last']:g} (gap {e['gap_at_min']:g} -> {e['gap_last']:g})"
        )
    else:
        msg = ""
    yield from _emit(run, ctx, res, evals, msg)


def _selection_metric(h) -> tuple[str, int] | None:
    """(series, step) of the run's recorded best metric when it is an eval metric other than a
    loss: the series whose value at the best checkpoint's step is `best_metric`."""
    step = _checkpoint_step(h.best_checkpoint) if h.best_checkpoint else None
    if step is None or h.best_metric is None:
        return None
    for name, series in h.series.items():
        if name.endswith("loss") or not sig.has_eval([name]):
            continue
        at = dict(zip(series.steps, series.values, strict=True)).get(step)
        if at is not None and abs(at - h.best_metric) <= 1e-9 * max(abs(at), 1.0):
            return name, step
    return None


@rule("MLH002", needs="run_history")
def loss_divergence(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    train = run.history.role("train_loss")
    res = sig.divergence(
        train, **_p(ctx, "min-points", "window", "mad-k", "min-ratio", "min-abs-frac", "settle-ratio")
    )
    msg = ""
    if isinstance(res, sig.Signal):
        e = res.evidence
        if res.kind == "non-finite":
            msg = (
                f"{train.name} is NaN/Inf from step {res.step} ({e['bad_points']} of {e['points']} points; "
                f"last finite value {e['last_finite']})"
            )
        else:
            what = "diverged" if res.kind == "diverged" else "spiked"
            tail = (
                "and never came back" if res.kind == "diverged" else f"({e['spikes']} spike(s); it recovered)"
            )
            msg = (
                f"{train.name} {what} at step {res.step}: {e['loss']:g}, {e['jump']:g}x the level "
                f"{e['level_before']:g} before it, {tail}; last value {e['last']:g}"
            )
    yield from _emit(run, ctx, res, train, msg)


@rule("MLH003", needs="run_history")
def exploding_gradients(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    grad = run.history.role("grad_norm")
    clip = run.settings.grad_clip
    res = sig.exploding_gradients(
        grad, clip, **_p(ctx, "min-points", "window", "spike-ratio", "trend-orders", "clip-ratio")
    )
    msg = ""
    if isinstance(res, sig.Signal):
        e = res.evidence
        clip_text = "clipping off" if not clip else f"clip {clip:g}"
        msg = {
            "non-finite": f"{grad.name} is NaN/Inf from step {res.step} ({e.get('bad_points')} points)",
            "spike": (
                f"{grad.name} jumped to {e.get('grad_norm')} at step {res.step}, {e.get('jump')}x its recent "
                f"median {e.get('median_before')} ({clip_text})"
            ),
            "rising": (
                f"{grad.name} rose {e.get('orders')} orders of magnitude over the run "
                f"({e.get('early_median')} -> {e.get('late_median')}; {clip_text})"
            ),
            "over-clip": (
                f"{grad.name} median over the second half is {e.get('median_second_half')}, "
                f"{e.get('ratio')}x the configured clip {clip:g}: clipping fires on "
                f"{e.get('share_clipped', 0):.0%} of logged steps"
            ),
        }[res.kind]
    yield from _emit(run, ctx, res, grad, msg)


@rule("MLH004", needs="run_history")
def vanishing_gradients(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    h = run.history
    layers = {k: h.series[v] for k, v in h.layer_grad_norms.items()}
    grad = h.role("grad_norm")
    res = sig.vanishing_gradients(grad, layers, **_p(ctx, "min-points", "layer-ratio", "decay-orders"))
    msg, series = "", grad
    if isinstance(res, sig.Signal):
        e = res.evidence
        if res.kind == "layer":
            series = h.series[h.layer_grad_norms[e["layer"]]]
            others = len(e["layers_below"]) - 1
            msg = (
                f"gradient norm of {e['layer']} has median {e['median_grad_norm']:g}, "
                f"{e['ratio']:g}x that of {e['largest_layer']} ({e['largest_median']:g})"
                + (f"; {others} more parameter(s) below {ctx.params.layer_ratio:g}x" if others else "")
            )
        else:
            msg = (
                f"{grad.name} fell {e['orders']:g} orders of magnitude over the run "
                f"({e['early_median']:g} -> {e['late_median']:g})"
            )
    yield from _emit(run, ctx, res, series, msg)


@rule("MLH005", needs="run_history")
def training_plateau(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    train = run.history.role("train_loss")
    res = sig.plateau(
        train, **_p(ctx, "min-points", "min-fraction", "min-rel-improvement", "still-high", "window")
    )
    msg = ""
    if isinstance(res, sig.Signal):
        e = res.evidence
        msg = (
            f"{train.name} improved by only {e['improvement']:g} from step {e['from_step']} "
            f"to {e['to_step']} ({e['fraction']:.0%} of the run) and stayed at {e['loss']:g} "
            f"(initial {e['initial']:g})"
        )
    yield from _emit(run, ctx, res, train, msg)


@rule("MLH006", needs="run_history")
def stopped_while_improving(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    h = run.history
    evals, train = h.role("eval_loss"), h.role("train_loss")
    res = sig.stopped_improving(
        evals, train, **_p(ctx, "min-points", "tail-fraction", "min-tail-share", "window")
    )
    msg, series = "", None
    if isinstance(res, sig.Signal):
        e = res.evidence
        series = h.series[e["series"]]
        msg = (
            f"{e['series']} was still falling when training stopped at step {e['last_step']}: "
            f"{e['tail_share']:.0%} of its total fall came after step {e['tail_from_step']} "
            f"({e['loss_at_tail_start']:g} -> {e['loss_last']:g})"
        )
    yield from _emit(run, ctx, res, series, msg)


@rule("MLH007", needs="run_history")
def lr_schedule_mismatch(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    lr, s = run.history.role("lr"), run.settings
    if s.warmup is None and s.decay is None:
        ctx.skip(
            Location(run.history.rel),
            "not judged: no configured schedule found "
            f"({'no config paired' if s.source is None else s.source + ' names no warmup or schedule'})",
        )
        return
    res = sig.lr_schedule(
        lr, warmup_configured=s.warmup, decay_configured=s.decay, **_p(ctx, "min-points", "flat-tolerance")
    )
    msg = ""
    if isinstance(res, sig.Signal):
        e = res.evidence
        parts = []
        if "warmup" in e["missing"]:
            parts.append(
                f"no warmup (first logged LR {e['first_lr']:g} at step {e['first_step']} is the peak)"
            )
        if "decay" in e["missing"]:
            parts.append(
                f"no decay (LR still {e['last_lr']:g} at step {e['last_step']}, peak {e['peak_lr']:g})"
            )
        msg = (
            f"{s.source} configures {' and '.join(e['missing'])}, but the logged {lr.name} shows "
            + "; ".join(parts)
        )
    yield from _emit(run, ctx, res, lr, msg)


@rule("MLH008", needs="run_history")
def best_checkpoint_not_shipped(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    h, s = run.history, run.settings
    if h.best_checkpoint is None:
        ctx.skip(Location(h.rel), "not judged: the run tracked no best checkpoint")
        return
    if s.load_best is None:
        ctx.skip(
            Location(h.rel), "not judged: no paired config says whether the best model is loaded at the end"
        )
        return
    if s.load_best:
        return
    best_step = _checkpoint_step(h.best_checkpoint)
    last_step = max(h.checkpoint_steps) if h.checkpoint_steps else None
    metric = s.best_metric_name or "loss"
    evals = h.series.get(metric if metric.startswith("eval_") else "eval_" + metric) or h.role("eval_loss")
    greater = s.greater_is_better
    if greater is None:  # TrainingArguments' default: greater is better unless the metric is a loss
        greater = evals is not None and not evals.name.endswith("loss")
    res = sig.best_not_shipped(evals, best_step, last_step, greater_is_better=greater, **_p(ctx, "min-gap"))
    msg = ""
    if isinstance(res, sig.Signal):
        e = res.evidence
        msg = (
            f"last checkpoint (step {e['last_step']}, {evals.name} {e['last']:g}) is {e['worse_by']:.0%} "
            f"worse than the run's best (checkpoint-{e['best_step']}, {e['best']:g}) and "
            "load_best_model_at_end is off"
        )
    yield from _emit(run, ctx, res, evals, msg)


def _checkpoint_step(path: str) -> int | None:
    tail = os.path.basename(path.rstrip("/\\")).removeprefix("checkpoint-")
    return int(tail) if tail.isdigit() else None


@rule("MLH009", needs="run_history")
def evaluation_never_run(run: PairedRun, ctx: RuleContext) -> Iterator[Finding]:
    h = run.history
    train = h.role("train_loss")
    res = sig.no_evaluation(train, list(h.series), **_p(ctx, "min-steps", "min-points"))
    msg = ""
    if isinstance(res, sig.Signal):
        msg = (
            f"{res.evidence['train_points']} training-loss points up to step {res.step} and no evaluation "
            f"metric logged ({', '.join(sorted(h.series))[:120]})"
        )
    yield from _emit(run, ctx, res, train, msg)
