"""safetensors (safe): rewrite a pickle-based checkpoint as safetensors (no code on load)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlaudit.fixers import FixError, fixer
from mlaudit.fixers.base import FixState, StepResult
from mlaudit.fixers.verify import ALIASES_KEY


@dataclass(frozen=True)
class SafetensorsConfig:
    """`filename`: output name (default: the input's stem + .safetensors); `aliases`: `keep`
    (default) writes every key as its own tensor, so that a plain `safetensors.load_file` sees
    every name the checkpoint had (tied or deduplicated tensors cost their bytes again);
    `metadata` stores them once and lists the dropped names in the `mlaudit.aliases` metadata
    (loaders must resolve them, as `load_model` with tied weights does)."""

    filename: str = ""
    aliases: str = "keep"

    def __post_init__(self) -> None:
        if self.aliases not in ("keep", "metadata"):
            raise FixError(f"safetensors: aliases must be keep or metadata, not {self.aliases!r}")


def _storage_key(t) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


@fixer(
    "safetensors",
    "safe",
    "state",
    "write the tensors as .safetensors: loading runs no code; every key kept (shared tensors "
    "as copies unless aliases=metadata), plain metadata kept",
    SafetensorsConfig,
    after=("prune",),  # and every state-level fixer (FORMAT_FIXERS)
)
def to_safetensors(state: FixState, config: SafetensorsConfig) -> StepResult:
    """Write state.tensors to <workdir>/<stem>.safetensors (verification happens in the runner)."""
    from safetensors.torch import save_file

    if state.source is not None and state.source.format == "safetensors" and not state.state_dirty:
        return StepResult("safetensors", "safe", "skipped", "the input is already safetensors")
    aliases: dict[str, str] = dict(state.aliases)
    seen: dict[tuple, str] = {}
    plain = {}
    for name, t in state.tensors.items():
        key = _storage_key(t)
        if name in aliases:
            continue
        if key in seen:  # tied weights (same storage and view): stored once
            aliases[name] = seen[key]
            continue
        seen[key] = name
        plain[name] = t.detach()
    # safetensors refuses tensors that share memory or are views of a larger storage: those
    # (different views of one storage, e.g. slices) are written as compact copies.
    owners: dict[int, int] = {}
    for t in plain.values():
        owners[t.untyped_storage().data_ptr()] = owners.get(t.untyped_storage().data_ptr(), 0) + 1
    plain = {
        k: (
            v.contiguous().clone()
            if owners[v.untyped_storage().data_ptr()] > 1
            or v.untyped_storage().nbytes() != v.numel() * v.element_size()
            else v.contiguous()
        )
        for k, v in plain.items()
    }
    copied = 0
    if config.aliases == "keep":  # every key a plain loader expects, as its own tensor
        for alias, kept in sorted(aliases.items()):
            plain[alias] = plain[kept].clone()
            copied += plain[alias].numel() * plain[alias].element_size()
        aliases = {}
    meta = {"format": "pt", ALIASES_KEY: json.dumps(aliases, sort_keys=True)}
    if state.metadata:
        meta["mlaudit.metadata"] = json.dumps(state.metadata, sort_keys=True, default=str)
    name = config.filename or f"{state.input_path.stem}.safetensors"
    path = state.workdir / name
    save_file(plain, str(path), metadata=meta)
    state.state_file = path
    state.aliases = aliases
    return StepResult(
        "safetensors",
        "safe",
        "applied",
        f"wrote {name}: {len(plain)} tensors, {len(aliases)} aliases, "
        f"{len(state.metadata)} metadata entries kept"
        + (
            f"; shared tensors written as copies ({copied / 1e6:.3f} MB) so that load_file sees every "
            "key (safetensors:aliases=metadata stores them once)"
            if copied
            else ""
        ),
        evidence={"tensors": len(plain), "aliases": len(aliases), "alias_copy_bytes": copied},
    )
