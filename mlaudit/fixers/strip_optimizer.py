"""strip-optimizer (safe): keep only the model weights of a training checkpoint.

Planned from MLC004, whose finding says where the model is (`state_key`, e.g. `model_state`,
"" for the top level) and which keys hold training state (`drop`): the optimizer is found by
its structure there, so no list of key names decides what is dropped. Without those
arguments (`--apply strip-optimizer` on a file MLC004 did not flag) the model state dict is
looked up under the usual keys (base.STATE_KEYS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlaudit.fixers import FixError, fixer
from mlaudit.fixers.base import OPTIMIZER_KEYS, FixState, StepResult, state_dict_of
from mlaudit.units import format_bytes


@dataclass(frozen=True)
class StripOptimizerConfig:
    """`state_key`: the dotted key whose tensors are the model (`model_state`; empty: find
    it); `drop`: comma-separated keys of training state to remove (used when the model sits
    at the top level beside them)."""

    state_key: str = ""
    drop: str = ""


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def model_tensors(
    tensors: dict[str, Any], checkpoint: Any, config: StripOptimizerConfig
) -> tuple[dict[str, Any], dict[str, str], str]:
    """(model tensors by state-dict name, state-dict name -> name in the file, where they
    were found) for the config's state key or drop list, else by the usual keys."""
    if config.state_key:
        key = config.state_key
        if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get(key), Mapping):
            # the object under the key: a state dict, or one nested a level deeper
            # ({"model": {"state_dict": ...}}), found the way a loader would
            weights, inner = state_dict_of(checkpoint[key])
            prefix = f"{key}.{inner}." if inner else f"{key}."
            return dict(weights), {n: prefix + n for n in weights}, repr(prefix.rstrip("."))
        prefix = key + "."  # a flat file with dotted names (safetensors of a training checkpoint)
        kept = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
        if not kept:
            raise FixError(f"strip-optimizer: no tensors under {config.state_key!r} in the checkpoint")
        return kept, {n: prefix + n for n in kept}, repr(key)
    drop = _split(config.drop)
    if drop:
        kept = {n: t for n, t in tensors.items() if not any(n == d or n.startswith(d + ".") for d in drop)}
        return kept, {n: n for n in kept}, "the top level"
    weights, found = state_dict_of(checkpoint)
    prefix = f"{found}." if found else ""
    return dict(weights), {n: prefix + n for n in weights}, repr(found) if found else "the top level"


@fixer(
    "strip-optimizer",
    "safe",
    "state",
    "drop optimizer/scheduler state and training extras; keep the model weights only (inference checkpoint)",
    StripOptimizerConfig,
)
def strip_optimizer(state: FixState, config: StripOptimizerConfig) -> StepResult:
    """Replace the pipeline's tensors with the model's."""
    before = len(state.tensors)
    before_bytes = sum(t.numel() * t.element_size() for t in state.tensors.values())
    weights, origin, where = model_tensors(state.tensors, state.checkpoint, config)
    state.tensors = weights
    state.origin = origin
    dropped_keys = set(_split(config.drop)) | OPTIMIZER_KEYS
    state.metadata = {k: v for k, v in state.metadata.items()
                      if not any(k == d or k.startswith(d + ".") for d in dropped_keys)}  # fmt: skip
    after_bytes = sum(t.numel() * t.element_size() for t in state.tensors.values())
    dropped = before - len(state.tensors)
    if dropped == 0:
        return StepResult("strip-optimizer", "safe", "skipped", "the checkpoint holds model weights only")
    state.state_dirty = True
    return StepResult(
        "strip-optimizer",
        "safe",
        "applied",
        f"kept {len(state.tensors)} model tensors under {where}, dropped "
        f"{dropped} other tensors ({format_bytes(before_bytes - after_bytes)})",
        evidence={"tensors_dropped": dropped, "bytes_dropped": before_bytes - after_bytes},
    )
