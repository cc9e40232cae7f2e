"""strip-prefix (safe): drop `module.` (DataParallel/DDP) and `_orig_mod.` (torch.compile) prefixes."""

from __future__ import annotations

from dataclasses import dataclass

from mlaudit.fixers import fixer
from mlaudit.fixers.base import FixState, StepResult, strip_prefixes


@dataclass(frozen=True)
class StripPrefixConfig:
    """`prefixes`: comma-separated wrapper prefixes to remove."""

    prefixes: str = "module.,_orig_mod."


@fixer(
    "strip-prefix",
    "safe",
    "state",
    "rename tensors without wrapper prefixes (module., _orig_mod.) so a plain model loads them",
    StripPrefixConfig,
    after=("strip-optimizer",),
)
def strip_prefix(state: FixState, config: StripPrefixConfig) -> StepResult:
    """Rename the pipeline's tensors; values untouched."""
    prefixes = tuple(p.strip() for p in config.prefixes.split(",") if p.strip())
    mapping = strip_prefixes(list(state.tensors), prefixes)
    renamed = sum(1 for old, new in mapping.items() if old != new)
    if not renamed:
        return StepResult("strip-prefix", "safe", "skipped", "no tensor name carries a wrapper prefix")
    state.tensors = {mapping[k]: v for k, v in state.tensors.items()}
    state.origin = {mapping[k]: state.origin.get(k, k) for k in mapping}
    state.state_dirty = True
    return StepResult(
        "strip-prefix",
        "safe",
        "applied",
        f"renamed {renamed} tensors ({', '.join(prefixes)})",
        evidence={"renamed": renamed},
    )
