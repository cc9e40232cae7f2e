"""Weight health (MLC011-MLC016): NaN/Inf anywhere, dead units, exact-zero sparsity,
layers far off their peers in scale, untouched normalization layers, spectral exponents."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint.stats import CheckpointStats, TensorStats
from mlaudit.model import Finding, Location


def _section(stats: CheckpointStats, name: str) -> str:
    layout = stats.layout
    if layout.optimizer is not None and name in set(layout.optimizer.tensor_names):
        return "optimizer state"
    if any(t.name == name for t in layout.scheduler_tensors):
        return "scheduler state"
    for m in layout.model:
        if m.info.name == name:
            return "buffer" if m.kind == "buffer" else "weight"
    return "tensor"


def _inf_is_sentinel(st: TensorStats, section: str) -> bool:
    """Inf (never NaN) used on purpose: a one-element tensor outside the model and optimizer
    (Lightning's ModelCheckpoint `kth_value`/`best_model_score`, EarlyStopping `best_score`
    start at +-inf) or an additive attention-mask buffer (-inf above the diagonal)."""
    if st.nan or not st.inf:
        return False
    if section == "tensor" and st.numel <= 1:
        return True
    return section == "buffer" and "mask" in st.name.rsplit(".", 1)[-1].lower()


@rule("MLC011", needs="checkpoint_stats")
def nan_or_inf(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    for st in stats.tensors.values():
        if (st.nan or st.inf) and st.alias_of is None:
            section = _section(stats, st.name)
            if _inf_is_sentinel(st, section):
                continue
            yield ctx.finding(
                f"{section} holds {st.nan:,} NaN and {st.inf:,} Inf of {st.numel:,} values "
                f"({(st.nan + st.inf) / st.numel:.1%}): any forward pass through it is poisoned",
                Location(stats.info.rel, pointer=st.name),
                evidence={"nan": st.nan, "inf": st.inf, "elements": st.numel, "section": section},
            )


def _weights(stats: CheckpointStats, min_dim: int = 2) -> list[TensorStats]:
    out = []
    for m in stats.layout.params:
        st = stats.tensors.get(m.info.name)
        if st is not None and len(st.shape) >= min_dim and st.numel and st.alias_of is None:
            out.append(st)
    return out


@rule("MLC012", needs="checkpoint_stats")
def dead_units(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    min_frac = ctx.params.min_dead_fraction
    min_rows = ctx.params.min_rows
    for st in _weights(stats):
        if not st.rows or st.rows < min_rows or not st.dead_rows or st.dead_rows == st.rows:
            continue  # a whole all-zero tensor is reported by MLC013, not as dead units
        frac = st.dead_rows / st.rows
        if frac >= min_frac:
            unit = "filters" if len(st.shape) >= 3 else "rows (output units)"
            yield ctx.finding(
                f"{st.dead_rows} of {st.rows} {unit} are exactly zero ({frac:.0%}): those units "
                "are dead and their compute and storage are wasted",
                Location(stats.info.rel, pointer=st.name),
                evidence={"dead_rows": st.dead_rows, "rows": st.rows, "fraction": round(frac, 4)},
                fix_hint=(
                    f"{ctx.fix_command(stats.info.rel, 'prune')} --run-model --config <training config>  "
                    "(removes the units; the config names the architecture; or retrain: check LR, "
                    "init, ReLU death)"
                ),
            )


@rule("MLC013", needs="checkpoint_stats")
def mostly_zero(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    min_frac = ctx.params.min_zero_fraction
    min_el = ctx.params.min_elements
    for st in _weights(stats, min_dim=1):
        if st.numel < min_el or st.finite == 0:
            continue
        frac = st.zeros / st.numel
        if frac >= min_frac:
            what = "is entirely zero" if st.zeros == st.numel else f"is {frac:.1%} exact zeros"
            yield ctx.finding(
                f"weight {what} ({st.zeros:,} of {st.numel:,}) but is stored dense",
                Location(stats.info.rel, pointer=st.name),
                evidence={"zeros": st.zeros, "elements": st.numel, "fraction": round(frac, 4)},
            )


def _peer_key(st: TensorStats) -> tuple:
    return (st.name.rsplit(".", 1)[-1], len(st.shape))


@rule("MLC014", needs="checkpoint_stats")
def scale_outlier(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    max_ratio = ctx.params.max_ratio
    min_peers = ctx.params.min_peers
    groups: dict[tuple, list[TensorStats]] = {}
    for st in _weights(stats):
        if st.rms and st.nan == 0 and st.inf == 0:
            groups.setdefault(_peer_key(st), []).append(st)
    for members in groups.values():
        if len(members) < min_peers:
            continue
        med = statistics.median(st.rms for st in members)
        if med <= 0:
            continue
        for st in members:
            ratio = st.rms / med
            if ratio > max_ratio or ratio < 1 / max_ratio:
                kind = "exploded" if ratio > 1 else "collapsed"
                yield ctx.finding(
                    f"RMS {st.rms:.3g} is {ratio:.3g}x the median {med:.3g} of its {len(members)} "
                    f"peer weights (limit {max_ratio:g}x): the layer looks {kind}",
                    Location(stats.info.rel, pointer=st.name),
                    evidence={"rms": st.rms, "peer_median_rms": med, "ratio": ratio,
                              "peers": len(members)},
                )


@rule("MLC015", needs="checkpoint_stats")
def untrained_norm(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    # Normalization layers start at weight == 1 and bias == 0 exactly; any training step
    # moves them. An all-ones scale is "untrained" only if peers of the same shape moved,
    # which shows the model was trained and this layer was not (frozen, unused, or
    # re-initialized after loading).
    min_peers = ctx.params.min_trained_peers
    ones: list[TensorStats] = []
    moved: dict[int, int] = {}
    for st in _weights(stats, min_dim=1):
        if len(st.shape) != 1 or not st.name.endswith("weight"):
            continue
        if st.min == 1.0 and st.max == 1.0:
            ones.append(st)
        elif st.rms and 0.2 < st.rms < 5:  # norm-scale-like values that moved away from 1
            moved[st.shape[0]] = moved.get(st.shape[0], 0) + 1
    for st in ones:
        peers = moved.get(st.shape[0], 0)
        if peers >= min_peers:
            yield ctx.finding(
                f"normalization scale is exactly 1.0 in all {st.numel} entries (its initial value) "
                f"while {peers} peer scale(s) of the same size were trained: this layer never learned",
                Location(stats.info.rel, pointer=st.name),
                evidence={"elements": st.numel, "trained_peers": peers},
            )


@rule("MLC016", needs="checkpoint_stats")
def spectral_alpha(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    if not stats.spectral.get("enabled"):
        return
    lo, hi = ctx.params.alpha_min, ctx.params.alpha_max
    for st in stats.tensors.values():
        if st.alpha is None or not math.isfinite(st.alpha):
            continue
        if st.alpha > hi or st.alpha < lo:
            state = "under-trained (heavy tail missing)" if st.alpha > hi else "possibly over-fitted"
            yield ctx.finding(
                f"power-law exponent alpha={st.alpha:.2f} of the weight spectrum lies outside "
                f"[{lo:g}, {hi:g}]: {state}",
                Location(stats.info.rel, pointer=st.name),
                evidence={"alpha": round(st.alpha, 4), "shape": list(st.shape),
                          "skipped": len(stats.spectral.get("skipped", []))},
            )
