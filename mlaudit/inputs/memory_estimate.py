"""Memory estimates for a checkpoint: inference weight memory per dtype and training memory
for the configured optimizer and precision, with the accounting stated. Pure arithmetic on
the header-level layout (and, with --run-model, measured activation bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlaudit.inputs.checkpoint.layout import CheckpointLayout

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
