"""dedupe (safe): store equal tensors once and stop saving whole storages for small slices."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mlaudit.fixers import fixer
from mlaudit.fixers.base import FixState, StepResult
from mlaudit.fixers.verify import bit_equal
from mlaudit.units import format_bytes


@dataclass(frozen=True)
class DedupeConfig:
    """`min_bytes`: only tensors at least this large are merged (tiny ones are not worth an alias)."""

    min_bytes: int = 1024


@fixer(
    "dedupe",
    "safe",
    "state",
    "store bit-identical tensors once; save views of larger storages as their own compact tensors",
    DedupeConfig,
)
def dedupe(state: FixState, config: DedupeConfig) -> StepResult:
    """Merge duplicates (recorded as aliases) and compact oversized slices."""
    import torch

    groups: dict[tuple, str] = {}
    aliases: dict[str, str] = dict(state.extras.get("aliases", {}))
    merged_bytes = compacted_bytes = 0
    out = {}
    for name, t in state.tensors.items():
        nbytes = t.numel() * t.element_size()
        storage = t.untyped_storage().nbytes()
        if storage > nbytes:  # torch.save would write the whole storage for this view
            compacted_bytes += storage - nbytes
            t = t.clone()
        if nbytes >= config.min_bytes:
            raw = t.detach().contiguous().reshape(-1)
            digest = hashlib.sha256(raw.view(torch.uint8).numpy().tobytes()).hexdigest()
            key = (str(t.dtype), tuple(t.shape), digest)
            kept = groups.get(key)
            if kept is not None and bit_equal(out[kept], t):
                out[name] = out[kept]  # the same tensor object: serialized once
                aliases[name] = kept
                merged_bytes += nbytes
                continue
            groups[key] = name
        out[name] = t
    if not aliases and not compacted_bytes:
        return StepResult("dedupe", "safe", "skipped", "no duplicate tensors or oversized slices")
    state.tensors = out
    state.extras["aliases"] = aliases
    state.state_dirty = True
    return StepResult(
        "dedupe",
        "safe",
        "applied",
        f"{len(aliases)} duplicate tensors stored once ({format_bytes(merged_bytes)}), "
        f"{format_bytes(compacted_bytes)} of oversized slices compacted",
        evidence={"aliases": len(aliases), "merged_bytes": merged_bytes, "compacted_bytes": compacted_bytes},
    )
