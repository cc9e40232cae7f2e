"""acme-sort-keys (safe): store the tensors in name order, values untouched."""

from __future__ import annotations

from dataclasses import dataclass

from mlaudit.fixers import fixer
from mlaudit.fixers.base import FixState, StepResult


@dataclass(frozen=True)
class SortKeysConfig:
    """`reverse`: descending instead of ascending name order."""

    reverse: bool = False


@fixer("acme-sort-keys", "safe", "state", "store tensors in name order (diff-friendly)", SortKeysConfig)
def sort_keys(state: FixState, config: SortKeysConfig) -> StepResult:
    """Reorder the pipeline's state dict; the runner verifies the output bit-exact."""
    names = sorted(state.tensors, reverse=config.reverse)
    if names == list(state.tensors):
        return StepResult("acme-sort-keys", "safe", "skipped", "tensors already in name order")
    state.tensors = {n: state.tensors[n] for n in names}
    state.state_dirty = True
    return StepResult("acme-sort-keys", "safe", "applied", f"reordered {len(names)} tensors",
                      evidence={"tensors": len(names)})
