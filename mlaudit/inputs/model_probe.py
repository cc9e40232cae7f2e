"""Runs the project's model (only with `--run-model` / `allow-code: true`): FLOPs and
activation memory measured on the meta device (no real tensors allocated), then one real
forward+backward on a small synthetic batch for gradient health.

Input kinds:
- `model_probe`: a ModelProbe for a checkpoint whose training config names a model class and
  an input spec; None when code may not run or the config cannot say what to build.
- `checkpoint_memory`: (CheckpointLayout, ModelProbe | None) for the memory rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from mlaudit.extras import need_line
from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.checkpoint import load_object
from mlaudit.inputs.checkpoint.layout import CheckpointLayout, strip_wrapper
from mlaudit.model import ArtifactSummary

PROBE_BATCH = 8  # examples in the real gradient batch: small, CPU-cheap


@dataclass
class ModelProbe:
    """What running the model told us; `error` says why a step could not be done."""

    rel: str  # the checkpoint the probe belongs to
    target: str
    error: str | None = None
    loaded_weights: str = "not attempted"
    forward_flops: int | None = None  # per example
    train_flops: int | None = None  # forward + backward per example
    activation_bytes: float | None = None  # saved-for-backward tensors at the config batch size
    activation_batch: int = 1
    grad_norms: dict[str, float] = field(default_factory=dict)
    no_grad: list[str] = field(default_factory=list)
    nonfinite_grads: dict[str, int] = field(default_factory=dict)
    dead_layers: dict[str, int] = field(default_factory=dict)  # module -> units, all dead
    relu_layers: int = 0
    train_batch: int | None = None  # from the training config, for the per-run estimate
    train_steps: int | None = None


def _first_tensor(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return getattr(out, "logits", None)


def _state_dict_for(layout: CheckpointLayout) -> dict[str, Any] | None:
    obj = load_object(layout.info)
    if layout.model_prefix:
        for part in layout.model_prefix.rstrip(".").split("."):
            obj = obj[part]
    if not isinstance(obj, dict):
        return None
    import torch

    return {strip_wrapper(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def pairing_problem(layout: CheckpointLayout, model: Any) -> str | None:
    """Why the config's model class does not describe this checkpoint (None when it does):
    every parameter of the class must be in the checkpoint and every model tensor of the
    checkpoint must be a parameter or buffer of the class, with the same shape. A config found
    beside a folder of checkpoints is only evidence for those it fits."""
    have = {strip_wrapper(m.key): tuple(m.info.shape) for m in layout.model}
    if not have:
        return None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    params = [n for n, _ in model.named_parameters()]
    missing = [n for n in params if n not in have]
    unexpected = [n for n in have if n not in want]
    shapes = [n for n in have if n in want and have[n] != want[n]]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    if shapes:
        n = shapes[0]
        parts.append(f"{len(shapes)} shapes differ (e.g. {n}: {list(have[n])} in the checkpoint, "
                     f"{list(want[n])} in the class)")  # fmt: skip
    if missing:
        parts.append(f"{len(missing)} parameters of the class are not in the checkpoint (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} checkpoint tensors are not in the class (e.g. {unexpected[0]})")
    return "the config's model class does not describe this checkpoint: " + "; ".join(parts)


def _measure_meta(model: Any, cfg: Any, probe: ModelProbe) -> None:
    """FLOPs per example (forward; forward+backward) and activation bytes, on meta tensors."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from mlaudit.inputs.model_builder import example_inputs

    meta = copy.deepcopy(model).to("meta")
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA fast path escapes the counter
    try:
        with sdpa_kernel(SDPBackend.MATH):
            inputs = [t.to("meta") for t in example_inputs(cfg, batch=1)]
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                meta(*inputs)
            probe.forward_flops = int(fc.get_total_flops())
            with FlopCounterMode(display=False) as fc:
                out = _first_tensor(meta(*inputs))
                if out is not None and out.requires_grad:
                    out.float().sum().backward()
            probe.train_flops = int(fc.get_total_flops())
            batch = int(cfg.batch_size or 1)
            params = {id(p) for p in meta.parameters()}
            saved: dict[int, int] = {}

            def pack(t: Any) -> Any:
                base = t._base if t._base is not None else t
                if id(base) not in params and id(t) not in params:
                    saved[id(t)] = t.numel() * t.element_size()
                return t

            inputs = [t.to("meta") for t in example_inputs(cfg, batch=batch)]
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                meta(*inputs)
            probe.activation_bytes = float(sum(saved.values()))
            probe.activation_batch = batch
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _gradient_run(model: Any, cfg: Any, probe: ModelProbe) -> None:
    """One forward+backward on a seeded synthetic batch with a random-projection loss."""
    import torch

    # seeded, without touching the caller's global RNG state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _seeded_gradient_run(model, cfg, probe)


def _seeded_gradient_run(model: Any, cfg: Any, probe: ModelProbe) -> None:
    """The run itself (the caller owns the RNG state)."""
    import torch

    from mlaudit.inputs.model_builder import example_inputs

    model.train()
    relu_out: dict[str, tuple[int, bool]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.ReLU, torch.nn.ReLU6)):
            def hook(_m: Any, _i: Any, out: Any, name: str = name) -> None:
                units = out[0].numel() if out.dim() > 0 else 1
                relu_out[name] = (units, bool((out <= 0).all()))
            hooks.append(mod.register_forward_hook(hook))
    try:
        out = _first_tensor(model(*example_inputs(cfg, batch=PROBE_BATCH)))
    finally:
        for h in hooks:
            h.remove()
    probe.relu_layers = len(relu_out)
    probe.dead_layers = {n: u for n, (u, dead) in relu_out.items() if dead}
    if out is None or not out.requires_grad:
        probe.error = "the model output does not require grad (no differentiable tensor output)"
        return
    gen = torch.Generator().manual_seed(1)
    proj = torch.randn(out.shape, generator=gen)
    (out.float() * proj).sum().div(out.numel()).backward()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            probe.no_grad.append(name)
            continue
        g = p.grad.detach().float()
        bad = int((~torch.isfinite(g)).sum())
        if bad:
            probe.nonfinite_grads[name] = bad
        else:
            probe.grad_norms[name] = float(torch.linalg.vector_norm(g))


def run_probe(layout: CheckpointLayout, allow_code: bool) -> ModelProbe | None:
    """Build the model named by the layout's config and measure it; None if not possible."""
    cfg = layout.config
    if not allow_code or cfg is None or not cfg.model_target or not cfg.input_spec:
        return None
    line = need_line("running the model (--run-model / allow-code)", ("torch",))
    if line:
        raise InputError(layout.info.rel, line)
    from mlaudit.inputs.model_builder import ModelBuildError, build_model

    probe = ModelProbe(layout.info.rel, cfg.model_target, train_batch=cfg.batch_size,
                       train_steps=cfg.max_steps)
    try:
        # An absolute search root: a relative one would hit a stale import cache entry.
        model = build_model(cfg, allow_code, search_root=str(cfg.path.parent.resolve()))
    except ModelBuildError as err:
        probe.error = str(err)
        return probe
    problem = pairing_problem(layout, model)
    if problem is not None:  # never measure another model's FLOPs for this checkpoint
        probe.error = problem
        probe.loaded_weights = "not loaded (names or shapes disagree)"
        return probe
    try:
        sd = _state_dict_for(layout)
        if sd:
            result = model.load_state_dict(sd, strict=False)
            probe.loaded_weights = (f"loaded from the checkpoint ({len(result.missing_keys)} missing, "
                                    f"{len(result.unexpected_keys)} unexpected keys)")
    except (InputError, RuntimeError, KeyError, TypeError) as err:
        probe.loaded_weights = f"not loaded ({type(err).__name__}); fresh initialization used"
    try:
        _measure_meta(model, cfg, probe)
    except Exception as err:  # project code: report, never crash the scan
        probe.error = f"FLOP/activation measurement failed: {type(err).__name__}: {err}"
    try:
        _gradient_run(model, cfg, probe)
    except Exception as err:
        probe.error = f"forward/backward on a synthetic batch failed: {type(err).__name__}: {err}"
    return probe


@input_kind("model_probe", scope="file", file_kinds=("checkpoint",))
def load_model_probe(session, file) -> ModelProbe | None:
    layout = session.get("checkpoint_layout", file)
    if layout is None:
        return None
    return run_probe(layout, session.options.allow_code)


@input_kind("checkpoint_memory", scope="file", file_kinds=("checkpoint",))
def load_checkpoint_memory(session, file) -> tuple[CheckpointLayout, ModelProbe | None] | None:
    layout = session.get("checkpoint_layout", file)
    if layout is None:
        return None
    probe = session.get("model_probe", file)
    from mlaudit.inputs.memory_estimate import GIB, memory_summary
    summary = memory_summary(layout, probe.__dict__ if probe else None)
    train = summary["training"]
    session.add_artifact(ArtifactSummary(file.rel, "checkpoint-memory", {
        "inference_bytes": dict(summary["inference"]),
        "training_bytes": {k: int(v) for k, v in train.breakdown().items()},
        "training_total_bytes": int(train.total),
        "training_total_gib": round(train.total / GIB, 3),
        "accounting": train.accounting,
        "activations": "measured on meta tensors" if train.activations is not None else "not included",
    }))
    return layout, probe
