"""Memory footprint (MLC006): inference memory per dtype and training memory for the
configured optimizer and precision, plus activations when the model could be run, against
the device budget named in the training config."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint_layout import CheckpointLayout
from mlaudit.model import Finding, Location
from mlaudit.registry import rule

GIB = 1024**3
INFERENCE_DTYPES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
# Optimizer state per parameter, in units of the state dtype (fp32 unless training is pure 16-bit).
OPTIMIZER_STATES = {"adam": 2, "adamw": 2, "lamb": 2, "lion": 1, "sgd": 1, "rmsprop": 1,
                    "adagrad": 1, "adafactor": 0.5}  # fmt: skip


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per component and the accounting used."""

    weights: float
    gradients: float
    optimizer: float
    master: float
    activations: float | None
    accounting: str

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.master + (self.activations or 0)

    def breakdown(self) -> dict[str, float]:
        parts = {"weights": self.weights, "gradients": self.gradients,
                 "optimizer": self.optimizer, "master_weights": self.master}
        if self.activations is not None:
            parts["activations"] = self.activations
        return parts


def inference_bytes(params: int, buffers: int) -> dict[str, int]:
    """Weights-only inference memory per storage dtype (buffers kept in fp32)."""
    return {k: params * b + buffers * 4 for k, b in INFERENCE_DTYPES.items()}


def training_bytes(params: int, buffers: int, optimizer: str | None, precision: str | None,
                   activations: float | None) -> TrainingMemory:
    """Training memory under the stated accounting:
    - fp32: fp32 weights, fp32 grads, optimizer states in fp32;
    - *-mixed / amp (torch.autocast): fp32 weights, grads and states as in fp32, plus a
      16-bit copy of the weights made by autocast (counted as "master" here: 2 B/param);
    - pure bf16/fp16: 16-bit weights, grads and optimizer states, no fp32 master copy.
    Activations only when measured. Framework overheads (CUDA context, fragmentation) are
    covered by the rule's usable-fraction, not here."""
    opt = (optimizer or "adamw").lower()
    states = OPTIMIZER_STATES.get(opt, 2)
    prec = (precision or "fp32").lower()
    mixed = "mixed" in prec or "amp" in prec
    pure16 = not mixed and ("16" in prec) and "32" not in prec
    if pure16:
        w = g = 2.0 * params
        o, master = 2.0 * states * params, 0.0
        acc = f"pure 16-bit ({prec}): 2 B weights + 2 B grads + {states}x2 B {opt} states per parameter"
    else:
        w = g = 4.0 * params
        o = 4.0 * states * params
        master = 2.0 * params if mixed else 0.0
        acc = (f"AMP ({prec}): fp32 weights, grads and {states} {opt} states"
               " + 2 B autocast copy per parameter"
               if mixed else f"fp32: 4 B weights + 4 B grads + {states}x4 B {opt} states per parameter")
    return TrainingMemory(w + buffers * 4, g, o, master, activations, acc + (
        optimizer is None and "; optimizer not configured, AdamW assumed" or ""))


def memory_summary(layout: CheckpointLayout, probe: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inference and training estimates for one checkpoint (GiB), for reports and MLC006."""
    cfg = layout.config
    p, b = layout.param_count(), layout.buffer_count()
    act = probe.get("activation_bytes") if probe else None
    train = training_bytes(p, b, cfg.optimizer if cfg else None, cfg.precision if cfg else None, act)
    return {"inference": inference_bytes(p, b), "training": train}


@rule("MLC006", needs="checkpoint_memory")
def memory_over_budget(target: tuple[CheckpointLayout, Any], ctx: RuleContext) -> Iterator[Finding]:
    layout, probe = target
    cfg = layout.config
    if cfg is None or not cfg.device_memory_gb:
        return
    usable = cfg.device_memory_gb * GIB * float(ctx.params["usable-fraction"])
    summary = memory_summary(layout, probe)
    train: TrainingMemory = summary["training"]
    stored = max((m.info.dtype for m in layout.params), key=lambda d: d == "float32", default="float32")
    inf_key = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(stored, "fp32")
    inference = summary["inference"][inf_key]
    where = Location(layout.info.rel)
    budget_txt = f"{cfg.device_memory_gb:g} GiB device x {ctx.params['usable-fraction']} usable"
    trains = cfg.optimizer is not None or layout.optimizer is not None
    if layout.role != "inference" and trains and train.total > usable:
        parts = ", ".join(f"{k} {v / GIB:.2f}" for k, v in train.breakdown().items())
        act_note = "" if train.activations is not None else "; activations not included (needs --run-model)"
        yield ctx.finding(
            f"estimated training memory {train.total / GIB:.2f} GiB exceeds {budget_txt} "
            f"= {usable / GIB:.2f} GiB (GiB: {parts}; {train.accounting}{act_note})",
            where, key="training",
            evidence={"training_bytes": int(train.total), "usable_bytes": int(usable),
                      **{f"{k}_bytes": int(v) for k, v in train.breakdown().items()},
                      "accounting": train.accounting},
            fix_hint="bf16 mixed precision, an 8-bit or factored optimizer, "
                     "gradient checkpointing, or sharding",
        )
    if inference > usable:
        yield ctx.finding(
            f"estimated inference weight memory {inference / GIB:.2f} GiB ({inf_key}) exceeds "
            f"{budget_txt} = {usable / GIB:.2f} GiB (int8 would need "
            f"{summary['inference']['int8'] / GIB:.2f} GiB)",
            where, key="inference",
            evidence={"inference_bytes": inference, "usable_bytes": int(usable),
                      **{f"{k}_bytes": v for k, v in summary["inference"].items()}},
            fix_hint="`mlaudit fix --cast-bf16` or `--int8`",
        )
