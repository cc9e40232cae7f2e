"""Training-run histories: the curves a run leaves beside its checkpoints, in one shape.

Readers (one module per source, none executes or unpickles anything, each bounded in bytes and
points): Hugging Face `trainer_state.json` (`huggingface`), Lightning CSVLogger `metrics.csv`
(`lightning_csv`), TensorBoard event files (`tensorboard`), the MLflow local file store
(`mlflow_store`). Each returns a `RunHistory`; `roles` says which logged series is the training
loss, the evaluation loss, the gradient norm and the learning rate, whatever each library
called them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Bounds: a history larger than this is not read (InputError, reported as MLA002).
MAX_BYTES = 256 * 1024 * 1024
MAX_POINTS = 2_000_000  # logged values across all series of one run

ROLES = ("train_loss", "eval_loss", "grad_norm", "lr")


@dataclass(frozen=True)
class Series:
    """One logged quantity: steps ascending, one value per step (the last one logged wins)."""

    name: str
    steps: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN/Inf as strings so strict JSON consumers can read them)."""
        return {"name": self.name, "steps": list(self.steps), "values": [json_number(v) for v in self.values]}


@dataclass(frozen=True)
class RunHistory:
    """A run's logged curves plus what it says about its own checkpoints.

    `rel` is the file the history was read from (findings point at it); `run_dir` the folder
    the run's checkpoints and config are looked up from.
    """

    source: str  # huggingface | lightning | tensorboard | mlflow
    path: Path
    rel: str
    run_dir: Path
    series: Mapping[str, Series]
    roles: Mapping[str, str] = field(default_factory=dict)  # role -> series name
    # per-parameter gradient norms (Lightning's grad_norm utility): parameter -> series name
    layer_grad_norms: Mapping[str, str] = field(default_factory=dict)
    best_checkpoint: str | None = None  # as the run recorded it (HF best_model_checkpoint)
    best_metric: float | None = None
    checkpoint_steps: tuple[int, ...] = ()  # steps at which checkpoints were saved, when known
    max_steps: int | None = None
    global_step: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # hparams.yaml / MLflow params

    def role(self, name: str) -> Series | None:
        """The series playing role `name` (see ROLES), or None when the run did not log it."""
        key = self.roles.get(name)
        return self.series.get(key) if key else None

    def last_step(self) -> int:
        """Last logged step of any series (the run's length as its logs show it)."""
        return max((s.steps[-1] for s in self.series.values() if s.steps), default=0)


def json_number(v: float) -> float | str:
    """A float as JSON can hold it: NaN and infinities become the strings "nan", "inf", "-inf"."""
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def to_float(value: Any) -> float | None:
    """A logged value as float (numbers and numeric strings, "nan"/"inf" included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def build_series(points: Mapping[str, Iterable[tuple[int, float]]]) -> dict[str, Series]:
    """Series from (step, value) points per name: sorted by step, the last value per step kept."""
    out: dict[str, Series] = {}
    for name, pts in points.items():
        pts = list(pts)
        # the usual case: steps already ascending, one value each
        if pts and all(a[0] < b[0] for a, b in zip(pts, pts[1:], strict=False)):
            steps, values = zip(*pts, strict=True)
            out[name] = Series(name, tuple(steps), tuple(values))
            continue
        by_step: dict[int, float] = {}
        for step, value in pts:
            by_step[step] = value
        if by_step:
            steps = tuple(sorted(by_step))
            out[name] = Series(name, steps, tuple(by_step[s] for s in steps))
    return out


# Series names per role, as HF, Lightning, TensorBoard callbacks and common scripts log them.
# Matched against the lower-cased name with "/" and "-" read as "_"; the first pattern that
# matches any series wins, so the order is a preference (a per-step loss over an epoch mean).
_ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "train_loss": (
        r"loss",
        r"train_loss_step",
        r"train_loss",
        r"training_loss",
        r"train_train_loss",
        r"loss_step",
        r"train_loss_epoch",
    ),
    "eval_loss": (
        r"eval_loss",
        r"val_loss",
        r"valid_loss",
        r"validation_loss",
        r"val_loss_epoch",
        r"test_loss",
        r"eval_eval_loss",
    ),
    "grad_norm": (
        r"grad_norm",
        r"train_grad_norm",
        r"grad_2\.0_norm_total",
        r"gradient_norm",
        r"grad_norm_total",
    ),
    "lr": (r"learning_rate", r"train_learning_rate", r"lr", r"lr_[a-z0-9_]+", r"lr_adam.*"),
}
_LAYER_GRAD = re.compile(r"^grad_[\d.]+_norm[/_](?!total$)(.+)$")


def _norm(name: str) -> str:
    return name.lower().replace("/", "_").replace("-", "_")


def assign_roles(names: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(role -> series name, parameter -> per-layer grad-norm series name) for logged names.

    The train-loss role takes a series only when it changes at most every few steps; summary
    values (HF's final `train_loss` average) are kept out by the readers themselves.
    """
    names = list(names)
    normed = {n: _norm(n) for n in names}
    roles: dict[str, str] = {}
    for role, patterns in _ROLE_PATTERNS.items():
        for pattern in patterns:
            rx = re.compile(pattern + r"$")
            hits = sorted(n for n in names if rx.match(normed[n]))
            if hits:
                roles[role] = hits[0]
                break
    layers = {}
    for n in names:
        m = _LAYER_GRAD.match(n)
        if m:
            layers[m.group(1)] = n
    return roles, layers


def make_history(
    source: str,
    path: Path,
    rel: str,
    run_dir: Path,
    points: Mapping[str, Iterable[tuple[int, float]]],
    **extra: Any,
) -> RunHistory:
    """The RunHistory of a reader's (step, value) points per name: series built, bounded by
    MAX_POINTS, roles assigned. `extra`: the source-specific RunHistory fields."""
    series = build_series(points)
    count_points(series, rel)
    roles, layers = assign_roles(series)
    return RunHistory(
        source=source,
        path=path,
        rel=rel,
        run_dir=run_dir,
        series=series,
        roles=roles,
        layer_grad_norms=layers,
        **extra,
    )


def check_size(path: Path, rel: str) -> int:
    """File size, or InputError when it is over MAX_BYTES (never read, never judged)."""
    from mlaudit.inputs import InputError

    try:
        size = path.stat().st_size
    except OSError as err:
        raise InputError(rel, f"cannot read: {err.strerror}") from None
    if size > MAX_BYTES:
        raise InputError(
            rel,
            f"run history of {size / 2**20:.0f} MiB is over the {MAX_BYTES // 2**20} MiB "
            "read limit; not checked",
        )
    return size


def count_points(series: Mapping[str, Series], rel: str) -> None:
    """InputError when a run holds more logged values than MAX_POINTS."""
    from mlaudit.inputs import InputError

    total = sum(len(s) for s in series.values())
    if total > MAX_POINTS:
        raise InputError(
            rel, f"run history holds {total} logged values, over the {MAX_POINTS} limit; not checked"
        )
