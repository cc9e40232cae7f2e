"""prune (unsafe): magnitude pruning within the fidelity budget.

- `mode=structured` (default): removes whole hidden units / channels between two Linear (or
  two Conv2d) layers joined only by element-wise ops (activations, dropout, pooling), ranked by
  the product of the producer row norm and the consumer column norm. The tensors really shrink.
- `mode=unstructured`: zeroes the smallest-magnitude weights globally. Honest note: stored
  dense, this shrinks neither the file nor the latency; it only helps with sparse storage or
  sparse kernels.

The target amount is tried first, then backed off until the fidelity budget is met.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mlaudit.fixers import FixError, fixer
from mlaudit.fixers.base import FixState, StepResult
from mlaudit.fixers.int8 import budget_miss
from mlaudit.fixers.metrics import classification, fidelity, torch_runner

PASS_THROUGH_MODULES = (
    "ReLU",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "Dropout",
    "Identity",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Hardswish",
    "Mish",
)
PASS_THROUGH_FUNCS = (
    "relu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "dropout",
    "leaky_relu",
    "max_pool2d",
    "avg_pool2d",
)


@dataclass(frozen=True)
class PruneConfig:
    """`mode`: structured | unstructured; `amount`: target fraction of channels / weights removed."""

    mode: str = "structured"
    amount: float = 0.5


def prunable_pairs(model: Any) -> list[tuple[str, str]]:
    """(producer, consumer) module names joined only by element-wise ops, via torch.fx."""
    import torch
    from torch import fx

    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as err:  # untraceable control flow: no structured pruning
        raise FixError(
            f"structured pruning needs a torch.fx-traceable model: {str(err).splitlines()[0]}"
        ) from None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(
            modules.get(node.target), (torch.nn.Linear, torch.nn.Conv2d)
        ):
            continue
        producer = modules[node.target]
        cur = node
        while len(cur.users) == 1:
            nxt = next(iter(cur.users))
            if nxt.op == "call_module":
                mod = modules.get(nxt.target)
                if type(mod) is type(producer) and (getattr(mod, "groups", 1) == 1):
                    pairs.append((node.target, nxt.target))
                    break
                if type(mod).__name__ in PASS_THROUGH_MODULES:
                    cur = nxt
                    continue
            elif (
                nxt.op in ("call_function", "call_method")
                and getattr(nxt.target, "__name__", str(nxt.target)) in PASS_THROUGH_FUNCS
                and nxt.args
                and nxt.args[0] is cur
            ):
                cur = nxt
                continue
            break
    return pairs


def _shrink(model: Any, pairs: list[tuple[str, str]], fraction: float) -> tuple[Any, int]:
    import torch

    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    removed = 0
    for prod_name, cons_name in pairs:
        prod, cons = modules[prod_name], modules[cons_name]
        w = prod.weight.detach()
        n = w.shape[0]
        keep = max(1, int(round(n * (1 - fraction))))
        if keep >= n:
            continue
        score = w.reshape(n, -1).norm(dim=1) * cons.weight.detach().transpose(0, 1).reshape(n, -1).norm(dim=1)
        idx = torch.sort(torch.topk(score, keep).indices).values
        with torch.no_grad():
            prod.weight = torch.nn.Parameter(w[idx].clone())
            if prod.bias is not None:
                prod.bias = torch.nn.Parameter(prod.bias.detach()[idx].clone())
            cons.weight = torch.nn.Parameter(cons.weight.detach()[:, idx].clone())
        if isinstance(prod, torch.nn.Linear):
            prod.out_features, cons.in_features = keep, keep
        else:
            prod.out_channels, cons.in_channels = keep, keep
        removed += n - keep
    return pruned, removed


def _sparsify(model: Any, fraction: float) -> tuple[Any, int]:
    import torch

    pruned = copy.deepcopy(model)
    weights = [m.weight for m in pruned.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    k = int(fraction * flat.numel())
    if k == 0:
        return pruned, 0
    threshold = torch.kthvalue(flat, k).values
    zeroed = 0
    with torch.no_grad():
        for w in weights:
            mask = w.abs() <= threshold
            zeroed += int(mask.sum())
            w[mask] = 0.0
    return pruned, zeroed


def _layer_summary(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    """Per pruned Linear/Conv2d layer: zero fraction of its weight after pruning and its output
    units before and after (the per-layer picture the HTML report draws)."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Conv2d)
    old = {n: m for n, m in before.named_modules() if isinstance(m, kinds)}
    out = {}
    for name, m in after.named_modules():
        if name in old and isinstance(m, kinds):
            w = m.weight.detach()
            out[name] = {"zero_fraction": round(float((w == 0).sum()) / max(w.numel(), 1), 4),
                         "rows_before": int(old[name].weight.shape[0]), "rows_after": int(w.shape[0])}
    return out


@fixer(
    "prune",
    "unsafe",
    "model",
    "magnitude pruning within the fidelity budget: structured (removes "
    "channels, really shrinks) or unstructured (zeros; dense size and latency unchanged)",
    PruneConfig,
    after=("strip-optimizer", "strip-prefix", "dedupe"),
)
def prune(state: FixState, config: PruneConfig) -> StepResult:
    """Prune state.model by the largest amount (target, then backing off) within the budget."""
    if state.model is None:
        raise FixError(
            "prune needs the model's architecture (--config with --run-model, or a TorchScript file)"
        )
    if config.mode not in ("structured", "unstructured"):
        raise FixError(f"prune mode must be structured or unstructured, not {config.mode!r}")
    baseline = state.require_baseline()
    x, ref = baseline.inputs, baseline.outputs
    labels, acc_ref = state.eval_labels, baseline.accuracy
    pairs = prunable_pairs(state.model) if config.mode == "structured" else []
    if config.mode == "structured" and not pairs:
        return StepResult(
            "prune",
            "unsafe",
            "skipped",
            "no Linear->Linear or Conv->Conv pair joined only by "
            "element-wise ops (nothing to prune structurally)",
        )
    tried = []
    for step in range(8):
        amount = round(config.amount * (0.75**step), 4)
        if amount < 0.01:
            break
        model, removed = _shrink(state.model, pairs, amount) if pairs else _sparsify(state.model, amount)
        got = torch_runner(model)(x)
        fid = fidelity(ref, got, baseline.class_scores, baseline.output_names)
        acc = classification(got, labels)["accuracy"] if labels is not None else None
        miss = budget_miss(fid, acc, acc_ref, state.budget)
        tried.append(
            {
                "amount": amount,
                "removed": removed,
                "mean_cosine": fid["mean_cosine"],
                "top1_agreement": fid["top1_agreement"],
                "budget_miss": miss,
            }
        )
        if not miss:
            break
    else:
        miss = tried[-1]["budget_miss"] if tried else "nothing tried"
    if miss:
        return StepResult(
            "prune",
            "unsafe",
            "failed",
            f"{config.mode} pruning met no budget down to amount {tried[-1]['amount'] if tried else 0}",
            evidence={"tried": tried},
            budget_failure=f"prune fidelity budget failed at the smallest amount tried: {miss}",
        )
    unpruned, state.model = state.model, model
    state.tensors = {k: v.detach() for k, v in model.state_dict().items()}
    state.origin = {}
    state.state_dirty = True
    state.model_changed = True
    # a structurally pruned state dict no longer fits the config's kwargs: say what changed
    mods = dict(model.named_modules())
    widths = {p: int(mods[p].weight.shape[0]) for p, _c in pairs}
    if config.mode == "structured":
        detail = (
            f"removed {removed} channels/units ({amount:.0%} of each of {len(pairs)} layer pairs: "
            f"{', '.join(f'{a}->{b}' for a, b in pairs)}); new widths "
            + ", ".join(f"{k}={v}" for k, v in widths.items())
            + " (the saved tensors need a model built with these widths)"
        )
    else:
        detail = (
            f"zeroed {removed} weights ({amount:.0%} of Linear/Conv weights); stored dense, this does not "
            "shrink the file or speed up inference (needs sparse storage or sparse kernels)"
        )
    return StepResult(
        "prune",
        "unsafe",
        "applied",
        detail,
        verified=f"mean cosine {fid['mean_cosine']:.4f} vs the unpruned model",
        evidence={
            "mode": config.mode,
            "amount": amount,
            "removed": removed,
            "tried": tried,
            "new_widths": widths,
            "layers": _layer_summary(unpruned, model),
        },
    )
