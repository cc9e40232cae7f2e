"""The working state a fix pipeline threads through its steps, and a step's result."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError
from mlaudit.inputs.checkpoint.layout import MODEL_KEYS

# The scan's model containers (one list for scan and fix: `model_state`, `state_dict`, ...), plus
# EMA weights, which a fix may keep when nothing else holds the model.
STATE_KEYS = (*MODEL_KEYS, "ema")
# Lightning saves `optimizer_states` and `lr_schedulers` (lists of state dicts).
OPTIMIZER_KEYS = {
    "optimizer",
    "optimizer_state_dict",
    "optimizer_state",
    "optim",
    "optim_state",
    "scheduler",
    "lr_scheduler",
    "scaler",
    "optimizer_states",
    "lr_schedulers",
}


@dataclass(frozen=True)
class Budget:
    """Fidelity and speed limits a fix must stay within (`--budget key=value,...`)."""

    cosine: float = 0.99  # mean cosine similarity of outputs vs the fp32 reference, at least
    top1: float = 0.99  # top-1 agreement where outputs are class scores, at least
    accuracy_drop: float = 0.01  # with labelled --eval-data: absolute accuracy drop, at most
    max_abs: float | None = None  # max abs output error, at most (off by default)
    latency: float = 1.0  # int8 / fp32 ONNX latency ratio at the larger batch, at most
    parity_atol: float = 1e-4  # ONNX export parity: |onnx - torch| <= atol + rtol * |torch|
    parity_rtol: float = 1e-3
    time: float = 120.0  # seconds for each accuracy-aware search (best-so-far after that)

    @classmethod
    def parse(cls, items: list[str]) -> Budget:
        """`cosine=0.995,top1=0.98,max-abs=0.1` -> Budget."""
        values: dict[str, Any] = {}
        names = {f: f for f in cls.__dataclass_fields__}
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in names:
                raise FixError(f"--budget {item!r}: expected key=value with key in {', '.join(names)}")
            try:
                values[key] = None if raw.strip().lower() == "none" else float(raw)
            except ValueError:
                raise FixError(f"--budget {item!r}: {raw!r} is not a number") from None
        return cls(**values)


@dataclass
class StepResult:
    """What one fix step did and how it was verified."""

    name: str
    applicability: str
    status: str  # applied | skipped | failed
    detail: str
    verified: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    budget_failure: str | None = None  # one line: which budget failed by how much


@dataclass(frozen=True)
class RunSettings:
    """How the run measures: thread count for PyTorch and ONNX Runtime, the larger batch,
    seconds of timing per batch size."""

    threads: int = 1
    large_batch: int = 32
    measure_seconds: float = 1.0


@dataclass(frozen=True)
class Baseline:
    """The fp32 reference every numeric fix is judged against: the inputs fidelity is
    measured on, the input model's outputs on them, whether those are class scores (top-1
    agreement applies), and its accuracy with labelled --eval-data."""

    inputs: Any  # tuple of numpy arrays, one per model input
    outputs: Any  # list of numpy arrays: every output of the input model
    class_scores: bool | list[bool] | None = None  # per output
    accuracy: float | None = None
    output_names: list[str] | None = None  # one per output (fidelity reports each by name)


@dataclass
class FixState:
    """Mutable state threaded through the pipeline (one per `mlaudit fix` run).

    Every artifact a step produces for later stages has a typed field of its own (no
    grab-bag): the state artifact (`tensors`, `origin`, `metadata`, `aliases`, `cast_dtype`),
    the torch module (`model`, `model_changed`), the ONNX artifacts (`exported_onnx`,
    `int8_path`, `onnx_path` the current one)."""

    input_path: Path
    workdir: Path
    budget: Budget
    source: Any = None  # CheckpointInfo for checkpoint inputs
    checkpoint: Any = None  # the loaded checkpoint object
    tensors: dict[str, Any] = field(default_factory=dict)  # current state dict
    origin: dict[str, str] = field(default_factory=dict)  # current name -> name in the input
    metadata: dict[str, str] = field(default_factory=dict)  # plain values kept with the tensors
    config: Any = None  # TrainingConfig
    reference: Any = None  # the fp32 torch module with the input's weights (model fixes)
    model: Any = None  # the current torch module (after pruning)
    onnx_input: Path | None = None  # the input was an ONNX file
    onnx_path: Path | None = None  # current ONNX artifact in workdir
    inputs: Any = None  # InputSource
    eval_labels: Any = None  # numpy labels from --eval-data
    state_file: Path | None = None  # current state-dict artifact in workdir
    state_dirty: bool = False  # tensors changed since the input: a state file must be written
    warnings: list[str] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)  # measured variants for the report
    runners: dict[str, Callable] = field(default_factory=dict)  # name -> fn(inputs) -> np outputs
    settings: RunSettings = field(default_factory=RunSettings)
    baseline: Baseline | None = None  # set when a model runs (model fixes, fidelity of casts)
    aliases: dict[str, str] = field(default_factory=dict)  # name -> the kept name it duplicates
    cast_dtype: str | None = None  # the tensors were cast to this dtype (a cast step applied)
    model_changed: bool = False  # a step changed the module's numbers (pruning)
    exported_onnx: Path | None = None  # the fp32 ONNX export
    int8_path: Path | None = None  # the int8 ONNX model (also when it failed its budget)
    int8_outputs: Any = None  # its outputs on baseline.inputs (the search ran it; measure reuses them)

    def require_baseline(self) -> Baseline:
        """The reference outputs; a model-level step without them is a planning bug."""
        if self.baseline is None:
            raise FixError("this fix needs the model's reference outputs (an architecture to run)")
        return self.baseline


def state_dict_of(obj: Any) -> tuple[dict[str, Any], str | None]:
    """The model weights inside a checkpoint object and the key they sat under (None when the
    object itself is the state dict)."""
    import torch

    def is_state(m: Any) -> bool:
        return isinstance(m, Mapping) and bool(m) and all(isinstance(v, torch.Tensor) for v in m.values())

    if is_state(obj):
        flat = dict(obj)
        # a flat file with dotted names (safetensors of a whole training checkpoint):
        # `model.fc.weight`, `optimizer.state.0.exp_avg`, ...
        firsts = {n.split(".", 1)[0] for n in flat}
        if firsts & OPTIMIZER_KEYS:
            wrap = firsts & set(STATE_KEYS)
            if len(wrap) == 1:
                key = wrap.pop()
                return {n[len(key) + 1 :]: t for n, t in flat.items() if n.startswith(key + ".")}, key
            return {n: t for n, t in flat.items() if n.split(".", 1)[0] not in OPTIMIZER_KEYS}, None
        return flat, None
    if isinstance(obj, Mapping):
        for key in STATE_KEYS:
            if is_state(obj.get(key)):
                return dict(obj[key]), key
        for key in STATE_KEYS:  # nested one level: {"model": {"state_dict": {...}}}
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                for sub in STATE_KEYS:
                    if is_state(inner.get(sub)):
                        return dict(inner[sub]), f"{key}.{sub}"
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, None
    raise FixError(
        "no model state dict found in the checkpoint (looked for a mapping of tensors "
        f"at the top level or under {', '.join(STATE_KEYS)})"
    )


def strip_prefixes(names: list[str], prefixes: tuple[str, ...] = ("module.", "_orig_mod.")) -> dict[str, str]:
    """old -> new name with wrapper prefixes removed (repeatedly: `module._orig_mod.x` -> `x`)."""
    from mlaudit.inputs.checkpoint.layout import strip_wrapper

    out = {name: strip_wrapper(name, prefixes) for name in names}
    if len(set(out.values())) != len(out):
        raise FixError("stripping prefixes would make two tensor names collide")
    return out


@contextlib.contextmanager
def logger_level(name: str | None, level: int) -> Iterator[None]:
    """Set a logger's level (None: the root logger) for the block, then restore it: the
    quantization and export libraries log chatter the report already states, and mlaudit
    must not change a caller's logging for good."""
    log = logging.getLogger(name)
    before = log.level
    log.setLevel(level)
    try:
        yield
    finally:
        log.setLevel(before)
