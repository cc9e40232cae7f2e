"""Memory footprint (MLC006): inference memory per dtype and training memory for the
configured optimizer and precision, plus activations when the model could be run, against
the device budget named in the training config (accounting in mlaudit/inputs/memory_estimate.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint.layout import CheckpointLayout
from mlaudit.inputs.memory_estimate import GIB, TrainingMemory, memory_summary
from mlaudit.model import Finding, Location
from mlaudit.units import format_bytes


@rule("MLC006", needs="checkpoint_memory")
def memory_over_budget(target: tuple[CheckpointLayout, Any], ctx: RuleContext) -> Iterator[Finding]:
    layout, probe = target
    cfg = layout.config
    if cfg is None or not cfg.device_memory_gb:
        return
    usable = cfg.device_memory_gb * GIB * ctx.params.usable_fraction
    summary = memory_summary(layout, probe.__dict__ if probe is not None else None)
    train: TrainingMemory = summary["training"]
    stored = max((m.info.dtype for m in layout.params), key=lambda d: d == "float32", default="float32")
    inf_key = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(stored, "fp32")
    inference = summary["inference"][inf_key]
    where = Location(layout.info.rel)
    budget_txt = f"{cfg.device_memory_gb:g} GiB device x {ctx.params.usable_fraction} usable"
    trains = cfg.optimizer is not None or layout.optimizer is not None
    if layout.role != "inference" and trains and train.total > usable:
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in train.breakdown().items())
        act_note = "" if train.activations is not None else "; activations not included (needs --run-model)"
        yield ctx.finding(
            f"estimated training memory {format_bytes(train.total)} exceeds {budget_txt} = "
            f"{format_bytes(usable)} "
            f"({parts}; {train.accounting}{act_note})",
            where, key="training",
            evidence={"training_bytes": int(train.total), "usable_bytes": int(usable),
                      **{f"{k}_bytes": int(v) for k, v in train.breakdown().items()},
                      "accounting": train.accounting},
            fix_hint=("" if "16" in (cfg.precision or "") else "bf16 mixed precision, ")
            + "an 8-bit or factored optimizer, gradient checkpointing, or sharding (FSDP/ZeRO)",
        )
    if inference > usable:
        yield ctx.finding(
            f"estimated inference weight memory {format_bytes(inference)} ({inf_key}) exceeds "
            f"{budget_txt} = {format_bytes(usable)} "
            f"(int8 would need {format_bytes(summary['inference']['int8'])})",
            where, key="inference",
            evidence={"inference_bytes": inference, "usable_bytes": int(usable),
                      **{f"{k}_bytes": v for k, v in summary["inference"].items()}},
            fix_hint=f"{ctx.fix_command(layout.info.rel, 'cast-bf16')}  (int8 through onnx needs --run-model "
            "--config <training config>)",
        )
