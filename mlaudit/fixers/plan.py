"""Plan a fix run: which fixers, in which order, safe or unsafe, with what expected effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError, all_fixers, make_config, parse_fix_arg
from mlaudit.fixers.base import OPTIMIZER_KEYS

STATE_ONLY = ("strip-optimizer", "strip-prefix", "dedupe", "cast-bf16", "cast-fp16", "safetensors")


@dataclass(frozen=True)
class PlanStep:
    """One planned fix."""

    name: str
    applicability: str
    level: str
    effect: str
    reason: str
    config: Any = None


@dataclass(frozen=True)
class Plan:
    """Every step of a run, in pipeline order."""

    input_path: Path
    artifact_kind: str  # onnx | torchscript | torch-export | hf-dir | checkpoint
    steps: tuple[PlanStep, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]


def _safe_candidates(info: Any) -> dict[str, str]:
    """Safe fixes this checkpoint needs, with the reason (from its metadata, no data read).
    Optimizer state is found by the scan's own layout reader (param_groups under any key, e.g.
    `optimizer_state`), whatever the file is called; a first step towards planning from the
    scan's findings (docs/fix-planner.md)."""
    from mlaudit.inputs.checkpoint.layout import build_layout

    out: dict[str, str] = {}
    keys = set(info.top_level_keys)
    layout = build_layout(info, None)
    sections = layout.bytes_by_section()
    training = sections["optimizer"] + sections["scheduler"]
    if layout.optimizer is not None or layout.scheduler_keys or keys & OPTIMIZER_KEYS:
        total = sum(sections.values()) or 1
        what = sorted(keys & OPTIMIZER_KEYS) or [layout.optimizer.prefix.rstrip(".") or "optimizer state"]
        out["strip-optimizer"] = (
            f"the checkpoint carries {', '.join(what)} ({training / 1e6:.2f} MB, {training / total:.0%} "
            "of the tensor bytes, training-only)"
        )
    names = [t.name for t in info.tensors]
    prefixed = [n for n in names if ".module." in f".{n}" or "_orig_mod." in n]
    if prefixed:
        out["strip-prefix"] = f"{len(prefixed)} tensor names carry module./_orig_mod. prefixes"
    storages: dict[str, int] = {}
    oversized = 0
    for t in info.tensors:
        if t.storage_key:
            storages[t.storage_key] = storages.get(t.storage_key, 0) + 1
        if t.storage_nbytes and t.storage_nbytes > t.nbytes:
            oversized += 1
    if oversized:
        out["dedupe"] = f"{oversized} tensors are slices saved with a larger storage"
    if info.format != "safetensors":
        out["safetensors"] = f"{info.format} checkpoints run pickle code on load"
    return out


def make_plan(
    input_path: Path,
    kind: str,
    info: Any,
    apply: list[str] | None,
    unsafe_fixes: bool,
    has_architecture: bool,
) -> Plan:
    """Choose the steps: explicit `apply` (NAME[:key=value...]) or the safe defaults (plus, with
    `unsafe_fixes`, ONNX export and int8 where an architecture is available)."""
    fixers = all_fixers()
    notes: list[str] = []
    chosen: dict[str, tuple[str, dict[str, str]]] = {}
    if apply:
        for item in apply:
            name, options = parse_fix_arg(item)
            if name not in fixers:
                raise FixError(f"unknown fix {name!r} (known: {', '.join(fixers)})")
            chosen[name] = ("requested with --apply", options)
    else:
        if kind == "checkpoint":
            chosen.update({n: (r, {}) for n, r in _safe_candidates(info).items()})
        if unsafe_fixes:
            if has_architecture or kind == "onnx":
                chosen["int8"] = ("--unsafe-fixes: int8 quantization of the model", {})
            elif kind == "checkpoint":
                chosen["cast-bf16"] = ("--unsafe-fixes: no architecture available, so only a weight cast", {})
    if kind != "checkpoint":
        bad = [n for n in chosen if n in STATE_ONLY]
        if bad:
            raise FixError(
                f"{', '.join(bad)} appl{'ies' if len(bad) == 1 else 'y'} to checkpoints, not to {kind} files"
            )
    if {"int8", "int8-static"} & set(chosen) and kind != "onnx" and "onnx" not in chosen:
        chosen["onnx"] = ("int8 quantizes an ONNX model: export first", {})
        notes.append("added onnx: int8 quantization needs the exported ONNX model")
    if "int8" in chosen and "int8-static" in chosen:
        raise FixError("choose one of int8 and int8-static")
    if "cast-bf16" in chosen and "cast-fp16" in chosen:
        raise FixError("choose one of cast-bf16 and cast-fp16")
    needs_model = [n for n in chosen if fixers[n].level == "model"]
    if needs_model and not has_architecture and kind != "onnx":
        raise FixError(
            f"{', '.join(needs_model)} need{'s' if len(needs_model) == 1 else ''} the model's "
            "architecture: pass --config with --run-model (the config's model class), or give a "
            "TorchScript / torch.export / ONNX file"
        )
    if kind == "onnx" and "prune" in chosen:
        raise FixError("prune needs a PyTorch model, not an ONNX file")
    steps = []
    for name in fixers:  # pipeline order
        if name in chosen:
            spec = fixers[name]
            reason, options = chosen[name]
            steps.append(
                PlanStep(
                    name, spec.applicability, spec.level, spec.effect, reason, make_config(spec, options)
                )
            )
    return Plan(input_path, kind, tuple(steps), tuple(notes))


def unsafe_steps_allowed(plan: Plan, explicit: bool, unsafe_fixes: bool) -> None:
    """Unsafe steps need --unsafe-fixes or an explicit --apply."""
    unsafe = [s.name for s in plan.steps if s.applicability == "unsafe"]
    if unsafe and not (explicit or unsafe_fixes):
        raise FixError(
            f"{', '.join(unsafe)} change the model's numbers: pass --unsafe-fixes or name them in --apply"
        )
