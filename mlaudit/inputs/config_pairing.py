"""A checkpoint together with the training config that belongs to it (input kind
"checkpoint_config"), for rules that compare the two. Uses only the public APIs of
`inputs.checkpoint` and `inputs.training_config`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlaudit.inputs import input_kind
from mlaudit.inputs.training_config import TrainingConfig, config_for_checkpoint


@dataclass(frozen=True)
class CheckpointWithConfig:
    """A readable checkpoint (CheckpointInfo) and its paired TrainingConfig."""

    checkpoint: Any
    config: TrainingConfig


@input_kind("checkpoint_config", scope="file", file_kinds=("checkpoint",))
def load_checkpoint_config(session, file) -> CheckpointWithConfig | None:
    """None when the checkpoint has no config; InputError when the checkpoint is unreadable."""
    info = session.get("checkpoint", file)
    cfg = config_for_checkpoint(session, file)
    return None if cfg is None else CheckpointWithConfig(info, cfg)
