"""Detection algorithms for run histories (rule family MLH): pure functions on logged series.

Each detector takes `Series` (steps ascending) and thresholds and returns one of:
- `Signal`: the pathology shows; `step` is where it shows, `evidence` the numbers behind it,
  `marks` the steps a report should mark on the curve;
- `TooShort`: the history cannot be judged (too few points, no finite values); the reason is
  what `-v` prints;
- None: judged and healthy.

Losses are compared in ratios (they live on very different scales across tasks); noise is
measured with the median absolute deviation, never the standard deviation, so one spike does
not hide another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlaudit.inputs.history import Series


@dataclass(frozen=True)
class Signal:
    """A pathology found in a history."""

    kind: str
    step: int
    evidence: dict[str, Any] = field(default_factory=dict)
    marks: tuple[int, ...] = ()


@dataclass(frozen=True)
class TooShort:
    """The history is too short (or too empty) to judge; `reason` says why."""

    reason: str


Result = Signal | TooShort | None


def _arrays(series: Series) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(series.steps, dtype=np.int64), np.asarray(series.values, dtype=np.float64)


def _finite(series: Series) -> tuple[np.ndarray, np.ndarray]:
    steps, values = _arrays(series)
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def _r(x: float, digits: int = 4) -> float:
    """Round for evidence (fingerprints and messages must not carry float noise)."""
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return float(x)
    return round(x, max(digits - 1 - int(math.floor(math.log10(abs(x)))), 0))


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centered rolling median (edges use the available points)."""
    n = len(values)
    if n == 0 or window <= 1:
        return values.copy()
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.median(view, axis=1)[:n]


def _trailing_median(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the `window` points before each point (NaN for the first `window`)."""
    n = len(values)
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    if n > window:
        view = np.lib.stride_tricks.sliding_window_view(values[:-1], window)
        m = np.median(view, axis=1)
        med[window:] = m
        mad[window:] = np.median(np.abs(view - m[:, None]), axis=1)
    return med, mad


# ---------------------------------------------------------------- overfitting


def overfitting(
    train: Series | None,
    evals: Series | None,
    *,
    min_evals: int = 5,
    min_rise: float = 0.10,
    sustain_evals: int = 3,
    min_train_drop: float = 0.10,
) -> Result:
    """Eval loss rising for a sustained stretch after its minimum while train loss keeps falling.

    Fires when the median of the last `sustain_evals` eval losses is at least `min_rise` above
    the minimum, every one of them is above it, and the train loss over the same stretch fell by
    at least `min_train_drop` (relative). `step` is the eval minimum (where the gap opened).
    """
    if evals is None:
        return TooShort("no evaluation loss logged")
    if train is None:
        return TooShort("no training loss logged")
    es, ev = _finite(evals)
    if len(ev) < min_evals:
        return TooShort(f"{len(ev)} finite eval-loss points, {min_evals} needed")
    ts, tv = _finite(train)
    i_min = len(ev) - 1 - int(np.argmin(ev[::-1]))  # a flat bottom ends where the rise starts
    after = len(ev) - 1 - i_min
    if after < sustain_evals:
        return None  # the minimum is at (or near) the end: no sustained rise
    best, tail = ev[i_min], ev[-sustain_evals:]
    rise = (float(np.median(tail)) - best) / abs(best) if best else math.inf
    if rise < min_rise or not np.all(tail > best):
        return None
    start_step, end_step = int(es[i_min]), int(es[-1])
    # train loss near the eval minimum vs at the end, each the median of the points around it
    near = tv[(ts >= start_step - (end_step - start_step) * 0.05) & (ts <= start_step)]
    if len(near) == 0:
        near = tv[ts <= start_step][-3:]
    end_train = tv[ts <= end_step][-max(3, len(near)) :]
    if len(near) == 0 or len(end_train) == 0:
        return TooShort("too few training-loss points around the eval minimum")
    t_start, t_end = float(np.median(near)), float(np.median(end_train))
    train_drop = (t_start - t_end) / abs(t_start) if t_start else 0.0
    if train_drop < min_train_drop:
        return None
    return Signal(
        "overfitting",
        start_step,
        {
            "eval_min_step": start_step,
            "eval_min": _r(best),
            "eval_last": _r(float(ev[-1])),
            "eval_rise": _r(rise, 3),
            "train_at_min": _r(t_start),
            "train_last": _r(t_end),
            "gap_at_min": _r(best - t_start),
            "gap_last": _r(float(ev[-1]) - t_end),
            "stretch_steps": end_step - start_step,
            "last_step": end_step,
        },
        marks=(start_step, end_step),
    )


# ---------------------------------------------------------------- divergence and spikes


def divergence(
    train: Series | None,
    *,
    min_points: int = 10,
    window: int = 10,
    mad_k: float = 10.0,
    min_ratio: float = 3.0,
    min_abs_frac: float = 0.25,
    settle_ratio: float = 2.0,
) -> Result:
    """Non-finite loss, or a jump beyond a robust threshold.

    A point spikes when it exceeds the median of the `window` points before it by more than
    `mad_k` MADs, by a factor of at least `min_ratio`, and by at least `min_abs_frac` of the
    run's initial loss level (late minibatch noise around a tiny loss is no spike). The run
    `diverged` when the loss after the first spike stays above `settle_ratio` times the level
    before it until the end; else it is a `spike` (the run recovered).
    """
    if train is None:
        return TooShort("no training loss logged")
    steps, values = _arrays(train)
    if len(values) < min_points:
        return TooShort(f"{len(values)} training-loss points, {min_points} needed")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        first = int(steps[bad[0]])
        before = values[: bad[0]][np.isfinite(values[: bad[0]])]
        return Signal(
            "non-finite",
            first,
            {
                "first_bad_step": first,
                "bad_points": int(len(bad)),
                "points": int(len(values)),
                "last_finite": _r(float(before[-1])) if len(before) else None,
            },
            marks=(first,),
        )
    med, mad = _trailing_median(values, window)
    initial = float(np.median(values[:3]))  # the loss the run started from
    threshold = np.maximum.reduce([med + mad_k * mad, med * min_ratio, med + min_abs_frac * abs(initial)])
    spikes = np.flatnonzero(values > threshold)
    if len(spikes) == 0:
        return None
    i = int(spikes[0])
    level = float(med[i])
    after = values[i:]
    diverged = bool(np.all(after > settle_ratio * level))
    return Signal(
        "diverged" if diverged else "spike",
        int(steps[i]),
        {
            "step": int(steps[i]),
            "loss": _r(float(values[i])),
            "level_before": _r(level),
            "jump": _r(float(values[i]) / level if level else math.inf, 3),
            "spikes": int(len(spikes)),
            "last": _r(float(values[-1])),
            "recovered": not diverged,
        },
        marks=tuple(int(s) for s in steps[spikes[:20]]),
    )


# ---------------------------------------------------------------- gradients


def _log_trend(values: np.ndarray) -> tuple[float, float, int]:
    """log10 medians of the first and the last fifth of a positive series, and the fifth's size."""
    logs = np.log10(np.maximum(values, 1e-30))
    fifth = max(len(values) // 5, 2)
    return float(np.median(logs[:fifth])), float(np.median(logs[-fifth:])), fifth


def exploding_gradients(
    grad: Series | None,
    clip: float | None,
    *,
    min_points: int = 10,
    window: int = 10,
    spike_ratio: float = 50.0,
    trend_orders: float = 2.0,
    clip_ratio: float = 10.0,
) -> Result:
    """Logged gradient norm that is non-finite, jumps `spike_ratio`x its recent median, rises by
    `trend_orders` orders of magnitude from the first to the last fifth of the run, or stays
    above `clip_ratio` x the configured clip over the second half (clipping on nearly every step).
    """
    if grad is None:
        return TooShort("no gradient norm logged")
    steps, values = _arrays(grad)
    if len(values) < min_points:
        return TooShort(f"{len(values)} gradient-norm points, {min_points} needed")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        first = int(steps[bad[0]])
        return Signal(
            "non-finite", first, {"first_bad_step": first, "bad_points": int(len(bad))}, marks=(first,)
        )
    logs = np.log10(np.maximum(values, 1e-30))
    med, _ = _trailing_median(logs, window)
    spikes = np.flatnonzero(logs - med > math.log10(spike_ratio))
    if len(spikes):
        i = int(spikes[0])
        return Signal(
            "spike",
            int(steps[i]),
            {
                "step": int(steps[i]),
                "grad_norm": _r(float(values[i])),
                "median_before": _r(10 ** float(med[i])),
                "jump": _r(float(values[i]) / 10 ** float(med[i]), 3),
                "spikes": int(len(spikes)),
                "clip": clip,
            },
            marks=tuple(int(s) for s in steps[spikes[:20]]),
        )
    early, late, fifth = _log_trend(values)
    if late - early >= trend_orders:
        return Signal(
            "rising",
            int(steps[-fifth]),
            {
                "early_median": _r(10**early),
                "late_median": _r(10**late),
                "orders": _r(late - early, 3),
            },
            marks=(int(steps[0]), int(steps[-1])),
        )
    if clip and clip > 0:
        half = values[len(values) // 2 :]
        level = float(np.median(half))
        share = float(np.mean(half > clip))
        if level >= clip_ratio * clip:
            return Signal(
                "over-clip",
                int(steps[len(values) // 2]),
                {
                    "median_second_half": _r(level),
                    "clip": clip,
                    "ratio": _r(level / clip, 3),
                    "share_clipped": _r(share, 3),
                },
            )
    return None


def vanishing_gradients(
    grad: Series | None,
    layers: dict[str, Series] | None = None,
    *,
    min_points: int = 10,
    layer_ratio: float = 1e-3,
    decay_orders: float = 3.0,
) -> Result:
    """Gradients that vanish: a layer whose median gradient norm is below `layer_ratio` of the
    largest layer's (per-layer norms, when logged), or a total norm that falls `decay_orders`
    orders of magnitude from the first to the last fifth of the run."""
    layers = layers or {}
    usable = {k: _finite(s)[1] for k, s in layers.items()}
    usable = {k: v for k, v in usable.items() if len(v) >= min_points}
    if len(usable) >= 2:
        meds = {k: float(np.median(v)) for k, v in usable.items()}
        top_name = max(meds, key=meds.__getitem__)
        top = meds[top_name]
        weak = sorted((v / top, k) for k, v in meds.items() if top > 0 and v / top < layer_ratio)
        if weak:
            ratio, name = weak[0]
            series = layers[name]
            return Signal(
                "layer",
                int(series.steps[0]),
                {
                    "layer": name,
                    "median_grad_norm": _r(meds[name]),
                    "largest_layer": top_name,
                    "largest_median": _r(top),
                    "ratio": _r(ratio, 3),
                    "layers_below": [k for _, k in weak],
                },
                marks=(int(series.steps[0]), int(series.steps[-1])),
            )
    if grad is None:
        return TooShort("no gradient norm logged") if not usable else None
    steps, values = _finite(grad)
    if len(values) < min_points:
        return TooShort(f"{len(values)} finite gradient-norm points, {min_points} needed")
    early, late, fifth = _log_trend(values)
    if early - late >= decay_orders:
        return Signal(
            "decay",
            int(steps[-fifth]),
            {
                "early_median": _r(10**early),
                "late_median": _r(10**late),
                "orders": _r(early - late, 3),
            },
            marks=(int(steps[0]), int(steps[-1])),
        )
    return None


# ---------------------------------------------------------------- progress


def _smooth(series: Series, window: int) -> tuple[np.ndarray, np.ndarray]:
    steps, values = _finite(series)
    return steps, _rolling_median(values, window)


def plateau(
    train: Series | None,
    *,
    min_points: int = 20,
    min_fraction: float = 0.5,
    min_rel_improvement: float = 0.01,
    still_high: float = 0.5,
    window: int = 5,
) -> Result:
    """Training loss that stopped improving while still high: over a stretch covering at least
    `min_fraction` of the logged steps, the smoothed loss improved by less than
    `min_rel_improvement` of its initial level, and it stayed above `still_high` x that level
    (the run stalled before learning much; a converged run that idles is not reported)."""
    if train is None:
        return TooShort("no training loss logged")
    steps, smooth = _smooth(train, window)
    if len(smooth) < min_points:
        return TooShort(f"{len(smooth)} finite training-loss points, {min_points} needed")
    initial = float(np.median(smooth[:window]))
    if initial <= 0:
        return None
    best = np.minimum.accumulate(smooth)
    tol = min_rel_improvement * initial
    span = steps[-1] - steps[0]
    start = 0
    longest = (0, 0)
    for i in range(1, len(best)):
        if best[start] - best[i] > tol:
            start = i
        if steps[i] - steps[start] > steps[longest[1]] - steps[longest[0]]:
            longest = (start, i)
    a, b = longest
    covered = (steps[b] - steps[a]) / span if span else 0.0
    if covered < min_fraction or best[b] < still_high * initial:
        return None
    return Signal(
        "plateau",
        int(steps[a]),
        {
            "from_step": int(steps[a]),
            "to_step": int(steps[b]),
            "fraction": _r(covered, 3),
            "initial": _r(initial),
            "loss": _r(float(best[b])),
            "improvement": _r(float(best[a] - best[b])),
        },
        marks=(int(steps[a]), int(steps[b])),
    )


def stopped_improving(
    evals: Series | None,
    train: Series | None,
    *,
    min_points: int = 6,
    tail_fraction: float = 0.25,
    min_tail_share: float = 0.2,
    window: int = 3,
) -> Result:
    """Training stopped while the loss was still falling: over the last `tail_fraction` of the
    logged steps the (smoothed) loss fell by at least `min_tail_share` of its total fall (0.2 of
    the fall in the last quarter: still falling at 80% of its average rate), and it was still
    falling at the very end, at (within 1% of) its lowest value. Judged on the eval loss when
    it has `min_points`, else on the training loss."""
    series = evals if evals is not None and len(_finite(evals)[1]) >= min_points else train
    if series is None:
        return TooShort("no loss logged")
    steps, smooth = _smooth(series, window)
    if len(smooth) < min_points:
        return TooShort(f"{len(smooth)} finite loss points, {min_points} needed")
    total = float(smooth[0] - smooth.min())
    if total <= 0:
        return None
    cut = steps[-1] - tail_fraction * (steps[-1] - steps[0])
    i_tail = int(np.searchsorted(steps, cut))
    i_tail = min(i_tail, len(steps) - 2)
    tail_drop = float(smooth[i_tail] - smooth[-1])
    # still falling, and at its best: a loss recovering from a divergence is no "still improving"
    still_falling = smooth[-1] < smooth[-2] and smooth[-1] <= smooth.min() * 1.01
    share = tail_drop / total
    if share < min_tail_share or not still_falling:
        return None
    return Signal(
        "still-improving",
        int(steps[-1]),
        {
            "series": series.name,
            "last_step": int(steps[-1]),
            "tail_from_step": int(steps[i_tail]),
            "tail_share": _r(share, 3),
            "loss_at_tail_start": _r(float(smooth[i_tail])),
            "loss_last": _r(float(smooth[-1])),
        },
        marks=(int(steps[i_tail]), int(steps[-1])),
    )


# ---------------------------------------------------------------- schedule, checkpoints, evaluation


def lr_schedule(
    lr: Series | None,
    *,
    warmup_configured: bool | None,
    decay_configured: bool | None,
    min_points: int = 5,
    flat_tolerance: float = 0.05,
) -> Result:
    """The logged learning rate contradicts the configured schedule: warmup configured but the
    first logged LR is already at its peak, or a decaying schedule configured but the LR never
    falls more than `flat_tolerance` below its peak."""
    if lr is None:
        return TooShort("no learning rate logged")
    if not warmup_configured and not decay_configured:
        return TooShort("the config asks for neither warmup nor decay")
    steps, values = _finite(lr)
    if len(values) < min_points:
        return TooShort(f"{len(values)} learning-rate points, {min_points} needed")
    peak = float(values.max())
    if peak <= 0:
        return None
    missing = []
    if warmup_configured and values[0] >= (1 - flat_tolerance) * peak:
        missing.append("warmup")
    if decay_configured and values[-1] >= (1 - flat_tolerance) * peak:
        missing.append("decay")
    if not missing:
        return None
    return Signal(
        "schedule",
        int(steps[0]),
        {
            "missing": missing,
            "first_lr": _r(float(values[0])),
            "peak_lr": _r(peak),
            "last_lr": _r(float(values[-1])),
            "first_step": int(steps[0]),
            "last_step": int(steps[-1]),
        },
        marks=(int(steps[0]), int(steps[-1])),
    )


def best_not_shipped(
    evals: Series | None,
    best_step: int | None,
    last_step: int | None,
    *,
    min_gap: float = 0.01,
    greater_is_better: bool = False,
) -> Result:
    """The last checkpoint is not the best one by the run's own eval metric: the metric at the
    last checkpoint's step is worse than at `best_step` by more than `min_gap` (relative)."""
    if evals is None:
        return TooShort("no eval metric logged")
    if best_step is None or last_step is None:
        return TooShort("the run recorded no best checkpoint")
    if best_step == last_step:
        return None
    by_step = dict(zip(evals.steps, evals.values, strict=True))
    best, last = by_step.get(best_step), by_step.get(last_step)
    if best is None or last is None or not (math.isfinite(best) and math.isfinite(last)):
        return TooShort("the eval metric was not logged at the best and the last checkpoint steps")
    worse = (best - last) if greater_is_better else (last - best)
    rel = worse / abs(best) if best else math.inf
    if rel <= min_gap:
        return None
    return Signal(
        "not-best",
        last_step,
        {
            "best_step": best_step,
            "best": _r(best),
            "last_step": last_step,
            "last": _r(last),
            "worse_by": _r(rel, 3),
        },
        marks=(best_step, last_step),
    )


EVAL_PREFIXES = ("eval", "val", "valid", "validation", "test")


def has_eval(names: Sequence[str]) -> bool:
    """Whether any logged series is an evaluation metric (by the usual prefixes)."""
    for n in names:
        low = n.lower().replace("/", "_").replace("-", "_")
        if low.startswith(tuple(p + "_" for p in EVAL_PREFIXES)) or low in EVAL_PREFIXES:
            return True
    return False


def no_evaluation(
    train: Series | None, names: Sequence[str], *, min_steps: int = 100, min_points: int = 10
) -> Result:
    """Training ran at least `min_steps` steps (`min_points` logged) and no eval metric was ever logged."""
    if train is None:
        return TooShort("no training loss logged")
    steps, _ = _arrays(train)
    if len(steps) < min_points or steps[-1] < min_steps:
        return TooShort(
            f"{len(steps)} training-loss points up to step {int(steps[-1]) if len(steps) else 0}; "
            f"{min_points} points and step {min_steps} needed"
        )
    if has_eval(names):
        return None
    return Signal(
        "no-eval",
        int(steps[-1]),
        {"last_step": int(steps[-1]), "train_points": int(len(steps))},
        marks=(int(steps[-1]),),
    )
