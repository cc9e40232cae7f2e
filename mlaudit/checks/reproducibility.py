"""MLR: reproducibility across configs and code (seeds, determinism)."""

from __future__ import annotations

from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.python_code import ModuleFacts, TrainingSetup
from mlaudit.model import Finding, Location

SEED_KEY = {"mlaudit": "seed", "lightning": "seed_everything", "hydra": "seed", "huggingface": "seed"}


def _code_seeds(setup: TrainingSetup) -> list[str]:
    return [f"{m.rel}:{s.line}" for m in setup.modules for s in m.seeds]


@rule("MLR001", needs="training_setup")
def no_seed_anywhere(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    code_seeds = _code_seeds(setup)
    # With no Python in the scan the training code lives elsewhere (a library's recipes, another
    # repository): whether it seeds cannot be known here, so nothing is said.
    if code_seeds or not setup.modules:
        return
    for cfg in setup.configs:
        if cfg.kind != "training" or cfg.partial or "seed" in cfg.auto or cfg.effective("seed") is not None:
            continue
        key = SEED_KEY.get(cfg.dialect, "seed")
        if key in cfg.raw:
            continue  # written, even as null: MLR005 reports a null seed
        yield ctx.finding(
            f"no seed anywhere: `{key}` is not set in this {cfg.dialect} config and none of the "
            f"{len(setup.modules)} Python files calls a seeding function",
            Location(cfg.rel, pointer=key),
            evidence={"python_files": len(setup.modules), "dialect": cfg.dialect},
        )


@rule("MLR002", needs="training_setup")
def determinism_not_configured(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    code_seeded = bool(_code_seeds(setup))
    for cfg in setup.configs:
        if cfg.deterministic is not True:
            continue
        gaps = []
        if cfg.effective("seed") is None and "seed" not in cfg.auto and not code_seeded:
            gaps.append("no seed is set in the config or code")
        if cfg.cudnn_benchmark is True:
            gaps.append(f"`{cfg.key_paths.get('cudnn_benchmark')}` is true (cuDNN autotuning picks "
                        "kernels nondeterministically)")
        if gaps:
            yield ctx.finding(
                f"deterministic training is requested but not configured: {'; '.join(gaps)}",
                Location(cfg.file_of(cfg.pointer_of("deterministic")), cfg.line_of("deterministic"),
                         pointer=cfg.pointer_of("deterministic")),
                evidence={"gaps": len(gaps)},
            )


TORCH_SEEDS = frozenset({
    "manual_seed", "manual_seed_all", "seed_everything", "set_seed", "enable_full_determinism",
    "set_random_seed", "seed_all", "fix_seed",
})  # fmt: skip


def _trainer(module: ModuleFacts, reachable: list[ModuleFacts]) -> ModuleFacts | None:
    """The module whose training loop an entry point runs: itself, or a project module it
    calls into (`TrainLoop(...).run_loop()` imported from train_util); None for entry points
    that only sample or evaluate, even when they import modules that can train."""
    if module.trains:
        return module
    for m in reachable:
        if m is module or not m.trains:
            continue
        leaf = m.module_name.rsplit(".", 1)[-1] + "."  # `from .train_util import X` -> `.train_util.X`
        if any(n.startswith(m.module_name + ".") or n.lstrip(".").startswith(leaf) for n in module.calls):
            return m
    return None


@rule("MLR003", needs="training_setup")
def training_script_unseeded(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    for module in setup.modules:
        if module.kind == "test" or not module.entry:
            continue  # library code and helpers: seeding is the entry point's job
        if module.hf_trainer:
            continue  # transformers' Trainer seeds itself from TrainingArguments.seed (default 42)
        reachable = setup.reachable(module)
        trainer = _trainer(module, reachable)
        if trainer is None or any(m.seeds for m in reachable):
            continue
        where = "" if trainer is module else f"; it trains through {trainer.rel}"
        yield ctx.finding(
            f"training script never seeds its random number generators (checked {len(reachable)} "
            f"module(s) it imports from the project{where})",
            Location(module.rel, module.anchor_line),
            evidence={"modules_checked": len(reachable)},
        )


@rule("MLR011", needs="training_setup")
def torch_never_seeded(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    for module in setup.modules:
        if module.kind == "test" or not module.entry or not module.uses_torch:
            continue
        reachable = setup.reachable(module)
        if _trainer(module, reachable) is None:
            continue
        sites = [(m, s) for m in reachable for s in m.seeds]
        if not sites or any(s.last in TORCH_SEEDS or s.resolved.startswith("torch.") for _, s in sites):
            continue
        m, first = sites[0]
        yield ctx.finding(
            f"training script seeds only {', '.join(sorted({s.name for _, s in sites}))} "
            f"({m.rel}:{first.line}); torch's generator (weight init, dropout, shuffling) stays unseeded",
            Location(module.rel, first.line if m is module else module.anchor_line),
            evidence={"seed_calls": len(sites)},
            # the same seed expression the module already passes to random/numpy
            fix_hint=f"torch.manual_seed({first.arg})" if first.arg and m is module else None,
        )


@rule("MLR010", needs="training_setup")
def seed_skipped_when_zero(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    for module in setup.modules:
        if module.kind == "test":
            continue
        for line, text in module.seed_guards:
            yield ctx.finding(
                f"seeding is guarded by `if {text}:`, so seed 0 (falsy) skips seeding altogether",
                Location(module.rel, line),
                evidence={"guard": text},
                key=text,
                fix_hint=f"if {text} is not None:",
            )
