"""strip-optimizer (safe): keep only the model weights of a training checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from mlaudit.fixers import fixer
from mlaudit.fixers.base import OPTIMIZER_KEYS, FixState, StepResult, state_dict_of
from mlaudit.units import format_bytes


@dataclass(frozen=True)
class StripOptimizerConfig:
    """No options: the model state dict is found under the usual keys (see base.STATE_KEYS)."""


@fixer(
    "strip-optimizer",
    "safe",
    "state",
    "drop optimizer/scheduler state and training extras; keep the model weights only (inference checkpoint)",
    StripOptimizerConfig,
)
def strip_optimizer(state: FixState, config: StripOptimizerConfig) -> StepResult:
    """Replace the pipeline's tensors with the model state dict found in the checkpoint."""
    weights, key = state_dict_of(state.checkpoint)
    before = len(state.tensors)
    before_bytes = sum(t.numel() * t.element_size() for t in state.tensors.values())
    prefix = f"{key}." if key else ""
    state.tensors = dict(weights)
    state.origin = {name: prefix + name for name in weights}
    state.metadata = {k: v for k, v in state.metadata.items() if k.split(".")[0] not in OPTIMIZER_KEYS}
    after_bytes = sum(t.numel() * t.element_size() for t in state.tensors.values())
    dropped = before - len(state.tensors)
    if dropped == 0:
        return StepResult("strip-optimizer", "safe", "skipped", "the checkpoint holds model weights only")
    state.state_dirty = True
    return StepResult(
        "strip-optimizer",
        "safe",
        "applied",
        f"kept {len(state.tensors)} model tensors under {key or 'the top level'!r}, dropped "
        f"{dropped} other tensors ({format_bytes(before_bytes - after_bytes)})",
        evidence={"tensors_dropped": dropped, "bytes_dropped": before_bytes - after_bytes},
    )
