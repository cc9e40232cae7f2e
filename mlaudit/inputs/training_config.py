"""Training configs mapped to one normalized view, whatever dialect they were written in.

Public API (used by checks and fixers; keep it stable):
- `TrainingConfig`: the normalized view. A field is None when the config does not say;
  `explicit` records which normalized keys the file set itself (a missing key is not the
  same as a disabled feature).
- `read_training_config(path, rel) -> TrainingConfig | None`: None when the file is not a
  training config; InputError when it is malformed.
- `config_for_checkpoint(session, file) -> TrainingConfig | None`: the config that belongs
  to a checkpoint (`--config`, a config beside it, or one named in its metadata).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, input_kind


@dataclass(frozen=True)
class TrainingConfig:
    """Normalized training configuration. Lines are 1-based, keyed by normalized field."""

    path: Path
    rel: str
    dialect: str  # mlaudit | huggingface | lightning | hydra | deepspeed
    raw: Mapping[str, Any] = field(default_factory=dict)
    model_target: str | None = None  # import path "pkg.module:Class" or "pkg.module.Class"
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # One entry per model input: {"shape": [..] (without batch), "dtype": "float32",
    # "low": 0, "high": 1000} (low/high bound integer inputs such as token ids).
    input_spec: tuple[Mapping[str, Any], ...] = ()
    optimizer: str | None = None  # normalized lower-case name: adam, adamw, sgd, ...
    lr: float | None = None
    weight_decay: float | None = None
    precision: str | None = None  # fp32 | fp16 | bf16 | fp16-mixed | bf16-mixed | ...
    grad_clip: float | None = None  # max grad norm; 0 means disabled
    seed: int | None = None
    batch_size: int | None = None
    epochs: int | None = None
    max_steps: int | None = None
    dropout: float | None = None
    device_memory_gb: float | None = None
    deterministic: bool | None = None
    validation: bool | None = None
    artifact_role: str | None = None  # "inference"/"export" when the config says so
    explicit: frozenset[str] = frozenset()
    lines: Mapping[str, int] = field(default_factory=dict)


_FIELDS = {
    "lr": float, "weight_decay": float, "grad_clip": float, "seed": int, "batch_size": int,
    "epochs": int, "max_steps": int, "dropout": float, "device_memory_gb": float,
}  # fmt: skip


def _from_mlaudit_dialect(path: Path, rel: str, data: Mapping[str, Any]) -> TrainingConfig:
    """mlaudit's own schema (documented in the README)."""
    model = data.get("model") or {}
    values: dict[str, Any] = {}
    for key, cast in _FIELDS.items():
        if data.get(key) is not None:
            try:
                values[key] = cast(data[key])
            except (TypeError, ValueError):
                raise InputError(rel, f"{key} must be a number, got {data[key]!r}") from None
    spec = model.get("input_spec") or data.get("input_spec") or ()
    if isinstance(spec, Mapping):
        spec = (spec,)
    return TrainingConfig(
        path=path,
        rel=rel,
        dialect="mlaudit",
        raw=data,
        model_target=model.get("_target_") if isinstance(model, Mapping) else None,
        model_kwargs={k: v for k, v in model.items() if not k.startswith("_") and k != "input_spec"},
        input_spec=tuple(spec),
        optimizer=str(data["optimizer"]).lower() if data.get("optimizer") else None,
        precision=str(data["precision"]).lower() if data.get("precision") else None,
        deterministic=data.get("deterministic"),
        validation=data.get("validation"),
        artifact_role=data.get("artifact_role"),
        explicit=frozenset(k for k in data if data[k] is not None),
        **values,
    )


def read_training_config(path: Path, rel: str) -> TrainingConfig | None:
    """Parse a YAML/JSON file; None when it does not look like a training config."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise InputError(rel, f"{where}malformed YAML/JSON") from None
    except UnicodeDecodeError:
        raise InputError(rel, "not UTF-8 text") from None
    if not isinstance(data, Mapping):
        return None
    if not ({"model", "optimizer", "lr"} & set(data)):
        return None
    return _from_mlaudit_dialect(path, rel, data)


def config_for_checkpoint(session: Any, file: Any) -> TrainingConfig | None:
    """The training config that belongs to a checkpoint: `--config`, else the only config
    in the checkpoint's directory or its parent."""
    explicit = session.options.training_config
    if explicit is not None:
        return read_training_config(Path(explicit), Path(explicit).name)
    here = file.path.parent
    for directory in (here, here.parent):
        for f in session.files:
            if f.kind == "config" and f.path.parent == directory:
                cfg = session.get("training_config", f)
                if cfg is not None:
                    return cfg
    return None


@input_kind("training_config", scope="file", file_kinds=("config",))
def load_training_config(session, file) -> TrainingConfig | None:
    return read_training_config(file.path, file.rel)
