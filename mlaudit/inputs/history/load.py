"""Input kind "run_history": finds the run histories among a scan's files and pairs each with
the checkpoints and training config it belongs to.

One history per run: a Hugging Face output dir holds one `trainer_state.json` per checkpoint
(each a prefix of the next), so only the output dir's own file, else the latest checkpoint's,
becomes the run; the others are still parsed (a corrupt one is reported) but judged through the
run. TensorBoard reads a folder of event files as one run, and so does this: the first event
file (by name) stands for its folder, unless a Lightning metrics.csv in the same folder already
holds the run (Lightning logging to both loggers at once). An MLflow run is its `meta.yaml`.

Config values come from the parsed training config (`inputs.training_config`), the run's
`hparams.yaml` (Lightning) or its logged params (MLflow); nothing here parses a config dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.dialects import get_path
from mlaudit.inputs.history import RunHistory, huggingface, lightning_csv, mlflow_store, tensorboard
from mlaudit.inputs.training_config import TrainingConfig

# Schedules that lower the LR over the run, and ones that keep it flat (HF / torch names).
DECAYING = frozenset(
    {
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "inverse_sqrt",
        "cosine_with_min_lr",
        "warmup_stable_decay",
        "reduce_lr_on_plateau",
        "steplr",
        "step",
        "multisteplr",
        "exponentiallr",
        "exponential",
        "onecyclelr",
        "cosineannealinglr",
        "cosineannealingwarmrestarts",
        "linearlr",
        "polynomiallr",
    }
)
FLAT = frozenset({"constant", "constant_with_warmup", "constantlr", "none"})
_WARMUP_KEYS = (
    "warmup_steps",
    "warmup_ratio",
    "warmup_epochs",
    "lr_warmup_steps",
    "num_warmup_steps",
    "scheduler.warmup_steps",
    "lr_scheduler.warmup_steps",
    "optim.warmup_steps",
)
_SCHEDULE_KEYS = (
    "lr_scheduler_type",
    "lr_scheduler",
    "scheduler",
    "lr_scheduler.name",
    "scheduler.name",
    "scheduler.type",
    "lr_scheduler.class_path",
    "scheduler._target_",
)


@dataclass(frozen=True)
class RunSettings:
    """What the run's own configuration says, as far as the rules need it; None = not said."""

    source: str | None = None  # where it was read (a config file, hparams.yaml, MLflow params)
    grad_clip: float | None = None  # 0 = clipping off
    warmup: bool | None = None
    decay: bool | None = None
    load_best: bool | None = None
    greater_is_better: bool | None = None
    best_metric_name: str | None = None  # metric_for_best_model


@dataclass(frozen=True)
class PairedRun:
    """A run history with its configuration; what the MLH rules read."""

    history: RunHistory
    settings: RunSettings
    config: TrainingConfig | None = None


def _hf_primary(session: Any, path: Path) -> bool:
    """Whether this trainer_state.json stands for its run (see the module docstring)."""
    if path.parent.name.startswith("checkpoint-"):
        run_dir = path.parent.parent
        if (run_dir / huggingface.FILE_NAME).is_file():
            return False
        latest = max(
            (c for c in run_dir.glob("checkpoint-*/" + huggingface.FILE_NAME)),
            key=lambda p: _step_of(p.parent.name),
            default=path,
        )
        return latest == path
    return True


def _step_of(name: str) -> int:
    tail = name.removeprefix("checkpoint-")
    return int(tail) if tail.isdigit() else -1


def read_history(session: Any, file: Any) -> RunHistory | None:
    """The history this file anchors, None when it anchors none (raises InputError when corrupt)."""
    name, rel = file.path.name, file.rel
    if name == huggingface.FILE_NAME:
        history = huggingface.read_trainer_state(file.path, rel)
        return history if _hf_primary(session, file.path) else None
    if name == lightning_csv.FILE_NAME:
        return lightning_csv.read_metrics_csv(file.path, rel)
    if tensorboard.is_event_file(name):
        if (file.path.parent / lightning_csv.FILE_NAME).is_file():
            return None  # Lightning logged the same run to CSV beside it: judged once, from the CSV
        first = tensorboard.run_files(file.path.parent)
        if first and first[0] != file.path:
            return None
        return tensorboard.read_event_folder(file.path.parent, rel)
    if mlflow_store.is_run_meta(rel):
        return mlflow_store.read_mlflow_run(file.path, rel)
    return None


@input_kind("run_history", scope="file", file_kinds=("config", "runlog", "other"))
def load_run_history(session: Any, file: Any) -> PairedRun | None:
    """A run history with its settings; None for files that anchor no history."""
    history = read_history(session, file)
    if history is None:
        return None
    config = _paired_config(session, history)
    return PairedRun(history, settings_for(history, config), config)


def _paired_config(session: Any, history: RunHistory) -> TrainingConfig | None:
    """`--config`, else a training config in the run folder or up to two folders above it
    (inside the scan root), nearest first."""
    if session.options.training_config is not None:
        try:
            return session.get("explicit_training_config")
        except InputError:
            return None
    root = session.root.resolve()
    folder = history.run_dir.resolve()
    for _ in range(3):
        for f in session.files:
            if (
                f.kind == "config"
                and f.path.parent.resolve() == folder
                and f.path.name != huggingface.FILE_NAME
            ):
                try:
                    cfg = session.get("training_config", f)
                except InputError:
                    continue  # reported once as MLA002 by the inventory pass
                if cfg is not None:
                    return cfg
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent
    return None


def settings_for(history: RunHistory, config: TrainingConfig | None) -> RunSettings:
    """Merge what the paired config, hparams.yaml and MLflow params say about the run."""
    raw: Mapping[str, Any] = dict(history.params)
    source = None
    if history.params:
        source = {"lightning": "hparams.yaml", "mlflow": "MLflow params"}.get(history.source, "run params")
    clip = None
    if config is not None:
        raw = {**raw, **config.raw}
        source = config.rel
        value = config.effective("grad_clip")
        clip = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if clip is None:
        for key in ("max_grad_norm", "gradient_clip_val", "grad_clip", "clip_grad_norm"):
            clip = _number(get_path(raw, key))
            if clip is not None:
                break
    return RunSettings(
        source=source,
        grad_clip=clip,
        warmup=_warmup(raw),
        decay=_decay(raw),
        load_best=_load_best(raw, config),
        greater_is_better=_bool(get_path(raw, "greater_is_better")),
        best_metric_name=metric
        if isinstance(metric := get_path(raw, "metric_for_best_model"), str)
        else None,
    )


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):  # MLflow params are strings
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _warmup(raw: Mapping[str, Any]) -> bool | None:
    said = [n for key in _WARMUP_KEYS if (n := _number(get_path(raw, key))) is not None]
    return any(n > 0 for n in said) if said else None


def _decay(raw: Mapping[str, Any]) -> bool | None:
    for key in _SCHEDULE_KEYS:
        value = get_path(raw, key)
        if isinstance(value, str):
            name = value.rsplit(".", 1)[-1].lower()
            if name in DECAYING:
                return True
            if name in FLAT:
                return False
    return None


def _load_best(raw: Mapping[str, Any], config: TrainingConfig | None) -> bool | None:
    said = _bool(get_path(raw, "load_best_model_at_end"))
    if said is None and config is not None and config.dialect == "huggingface":
        return False  # TrainingArguments' default: the last weights are what the run leaves
    return said
