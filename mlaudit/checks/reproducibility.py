"""MLR: reproducibility across configs and code (seeds, determinism)."""

from __future__ import annotations

from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.python_code import (
    TrainingSetup,
    call_name,
    is_training_script,
    iter_calls,
    seed_lines,
)
from mlaudit.model import Finding, Location

SEED_KEY = {"mlaudit": "seed", "lightning": "seed_everything", "hydra": "seed", "huggingface": "seed"}
HF_TRAINERS = ("Trainer", "SFTTrainer", "Seq2SeqTrainer", "DPOTrainer", "RewardTrainer", "GRPOTrainer")


def _code_seeds(setup: TrainingSetup) -> list[str]:
    return [f"{m.rel}:{line}" for m in setup.modules for line in seed_lines(m)]


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


@rule("MLR003", needs="training_setup")
def training_script_unseeded(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    for module in setup.modules:
        if module.kind == "test" or not is_training_script(module):
            continue
        calls = list(iter_calls(module.tree))
        if any(call_name(c).rsplit(".", 1)[-1] in HF_TRAINERS for c in calls):
            continue  # transformers' Trainer seeds itself from TrainingArguments.seed (default 42)
        reachable = setup.reachable(module)
        if any(seed_lines(m) for m in reachable):
            continue
        anchor = next((c for c in calls if call_name(c).endswith(("backward", ".fit"))), calls[0])
        yield ctx.finding(
            f"training script never seeds its random number generators (checked {len(reachable)} "
            "module(s) it imports from the project)",
            Location(module.rel, anchor.lineno),
            evidence={"modules_checked": len(reachable)},
        )
