"""Plan a fix run from the scan's findings: which fixers, in which order, with what arguments.

Ruff's model: the fixable rules run on the input first (the CLI hands their findings in);
each finding carries its fix (`Finding.fix`: the fixer and the arguments that locate the
problem). The plan groups the findings by fixer, turns their arguments into the fixer's
config, adds the fixers a planned one `requires`, and orders the steps by the fixers' declared
dependencies. `--apply NAME[:k=v]` runs exactly the named fixers (with the findings' arguments
where a finding asked for the same fixer, explicit options winning); `--unsafe-fixes` admits
the unsafe groups and the default model-level fix (int8 with an architecture, else a cast).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError, FixerSpec, all_fixers, make_config, parse_fix_arg
from mlaudit.model import Finding

# artifacts an input kind already is: a fixer that requires the one producing them needs no step
PROVIDED_BY_INPUT = {"onnx": ("onnx",)}


@dataclass(frozen=True)
class PlanStep:
    """One planned fix and the findings it answers (none when it was only requested)."""

    name: str
    applicability: str
    level: str
    effect: str
    reason: str
    config: Any = None
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Every step of a run, in pipeline order, and the fixable findings it was planned from."""

    input_path: Path
    artifact_kind: str  # onnx | torchscript | torch-export | hf-dir | checkpoint
    steps: tuple[PlanStep, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    findings: tuple[Finding, ...] = ()  # the input's fixable findings (planned or not)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]


@dataclass
class _Choice:
    reason: str
    options: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


def group_findings(findings: Iterable[Finding]) -> dict[str, tuple[Finding, ...]]:
    """Fixer name -> the findings that name it, in the order given."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.fix is not None:
            groups.setdefault(f.fix.fixer, []).append(f)
    return {k: tuple(v) for k, v in groups.items()}


def merged_args(findings: Sequence[Finding]) -> dict[str, tuple[str, ...]]:
    """The findings' fix arguments, key by key: every distinct value, in order (a string
    argument counts as one value, a tuple as several)."""
    out: dict[str, list[str]] = {}
    for f in findings:
        for key, value in (f.fix.args if f.fix else {}).items():
            values = out.setdefault(key, [])
            for v in (value,) if isinstance(value, str) else value:
                if v not in values:
                    values.append(v)
    return {k: tuple(v) for k, v in out.items()}


def config_options(spec: FixerSpec, args: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Arguments that name a field of the fixer's config, as that field's options (several
    values comma-separated); the others only locate the problem and are shown in the plan."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    return {k.replace("-", "_"): ",".join(v) for k, v in args.items() if k.replace("-", "_") in fields}


def _because(findings: Sequence[Finding]) -> str:
    """`MLC004 (1 finding): <first message>`, per code."""
    by_code: dict[str, list[Finding]] = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f)
    parts = []
    for code, fs in by_code.items():
        n = len(fs)
        parts.append(f"{code} ({n} finding{'s' if n != 1 else ''}): {fs[0].message}")
    return "; ".join(parts)


def _from_findings(
    groups: dict[str, tuple[Finding, ...]],
    fixers: dict[str, FixerSpec],
    unsafe_fixes: bool,
    has_architecture: bool,
    notes: list[str],
) -> dict[str, _Choice]:
    """The default plan: one step per fixer the findings name, where it may run."""
    chosen: dict[str, _Choice] = {}
    for name, found in groups.items():
        spec = fixers.get(name)
        codes = ", ".join(sorted({f.code for f in found}))
        if spec is None:
            notes.append(f"{codes} name fixer {name!r}, which is not installed")
        elif spec.applicability == "unsafe" and not unsafe_fixes:
            notes.append(f"{codes} suggest {name}, which changes numbers (--unsafe-fixes or --apply {name})")
        elif spec.level == "model" and not has_architecture:
            notes.append(f"{codes} suggest {name}, which needs the model's architecture "
                         "(--config with --run-model)")
        else:
            options = config_options(spec, merged_args(found))
            chosen[name] = _Choice(_because(found), options, found)
    return chosen


def _requested(
    apply: list[str], groups: dict[str, tuple[Finding, ...]], fixers: dict[str, FixerSpec]
) -> dict[str, _Choice]:
    """`--apply` items, with the arguments of findings that asked for the same fixer."""
    chosen: dict[str, _Choice] = {}
    for item in apply:
        name, options = parse_fix_arg(item)
        if name not in fixers:
            raise FixError(f"unknown fix {name!r} (known: {', '.join(fixers)})")
        found = groups.get(name, ())
        merged = {**config_options(fixers[name], merged_args(found)), **options}
        reason = "requested with --apply" + (f"; answers {_because(found)}" if found else "")
        chosen[name] = _Choice(reason, merged, found)
    return chosen


def _add_requirements(chosen: dict[str, _Choice], fixers: dict[str, FixerSpec], kind: str,
                      notes: list[str]) -> None:
    """Add the fixers a chosen one requires (transitively), unless the input already is
    what they produce (an ONNX file needs no export)."""
    provided = set(PROVIDED_BY_INPUT.get(kind, ()))
    todo = list(chosen)
    while todo:
        name = todo.pop()
        for req in fixers[name].requires:
            if req in chosen or req in provided:
                continue
            chosen[req] = _Choice(f"{name} requires it")
            notes.append(f"added {req}: {name} requires it")
            todo.append(req)


def _check(
    chosen: dict[str, _Choice], fixers: dict[str, FixerSpec], kind: str, has_architecture: bool
) -> None:
    """Refuse plans that cannot run: conflicting fixers, state fixes on non-checkpoints,
    model fixes without an architecture."""
    for name in chosen:
        clash = sorted(c for c in fixers[name].conflicts if c in chosen and c > name)
        if clash:
            raise FixError(f"choose one of {name} and {clash[0]}")
    if kind != "checkpoint":
        bad = [n for n in chosen if fixers[n].level == "state"]
        if bad:
            raise FixError(
                f"{', '.join(bad)} appl{'ies' if len(bad) == 1 else 'y'} to checkpoints, not to {kind} files"
            )
    needs_model = [n for n in chosen if fixers[n].level == "model"]
    if needs_model and not has_architecture and kind != "onnx":
        raise FixError(
            f"{', '.join(needs_model)} need{'s' if len(needs_model) == 1 else ''} the model's "
            "architecture: pass --config with --run-model (the config's model class), or give a "
            "TorchScript / torch.export / ONNX file"
        )
    if kind == "onnx" and "prune" in chosen:
        raise FixError("prune needs a PyTorch model, not an ONNX file")


def make_plan(
    input_path: Path,
    kind: str,
    findings: Sequence[Finding],
    apply: list[str] | None,
    unsafe_fixes: bool,
    has_architecture: bool,
) -> Plan:
    """Choose the steps: explicit `apply` (NAME[:key=value...]) or the fixes the `findings`
    name (safe ones; unsafe ones too with `unsafe_fixes`, which also adds ONNX export and
    int8 where an architecture is available, else a weight cast)."""
    fixers = all_fixers()
    notes: list[str] = []
    groups = group_findings(findings)
    if apply:
        chosen = _requested(apply, groups, fixers)
    else:
        chosen = _from_findings(groups, fixers, unsafe_fixes, has_architecture or kind == "onnx", notes)
        if unsafe_fixes:
            if has_architecture or kind == "onnx":
                chosen.setdefault("int8", _Choice("--unsafe-fixes: int8 quantization of the model"))
            elif kind == "checkpoint" and not {"cast-bf16", "cast-fp16"} & set(chosen):
                chosen["cast-bf16"] = _Choice(
                    "--unsafe-fixes: no architecture available, so only a weight cast"
                )
    _add_requirements(chosen, fixers, kind, notes)
    _check(chosen, fixers, kind, has_architecture)
    steps = []
    for name in fixers:  # pipeline order
        if name in chosen:
            spec, choice = fixers[name], chosen[name]
            steps.append(PlanStep(name, spec.applicability, spec.level, spec.effect, choice.reason,
                                  make_config(spec, choice.options), choice.findings))
    return Plan(input_path, kind, tuple(steps), tuple(notes), tuple(findings))


def unsafe_steps_allowed(plan: Plan, explicit: bool, unsafe_fixes: bool) -> None:
    """Unsafe steps need --unsafe-fixes or an explicit --apply."""
    unsafe = [s.name for s in plan.steps if s.applicability == "unsafe"]
    if unsafe and not (explicit or unsafe_fixes):
        raise FixError(
            f"{', '.join(unsafe)} change the model's numbers: pass --unsafe-fixes or name them in --apply"
        )
