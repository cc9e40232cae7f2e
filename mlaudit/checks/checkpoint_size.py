"""Checkpoint size and bloat: parameter budget, saved slices, duplicated bytes, optimizer
state in inference artifacts, wrapper key prefixes (MLC001-MLC005)."""

from __future__ import annotations

from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint.layout import CheckpointLayout
from mlaudit.inputs.checkpoint.stats import CheckpointStats
from mlaudit.model import Finding, Location
from mlaudit.units import format_bytes


@rule("MLC001", needs="checkpoint_layout")
def param_budget(layout: CheckpointLayout, ctx: RuleContext) -> Iterator[Finding]:
    budget = ctx.params.max_params
    total = layout.param_count()
    if budget <= 0 or total <= budget:
        return
    tree = layout.module_tree()
    top = sorted(tree.items(), key=lambda kv: -kv[1]["params"])[:5]
    shown = ", ".join(f"{k}: {v['params']:,}" for k, v in top)
    trainable, how = layout.trainable()
    yield ctx.finding(
        f"{total:,} parameters exceed the budget max-params={budget:,} by "
        f"{total / budget:.2f}x (largest modules: {shown})",
        Location(layout.info.rel),
        evidence={"parameters": total, "max_params": budget, "buffers": layout.buffer_count(),
                  "trainable": trainable, "trainable_source": how,
                  "modules": {k: v["params"] for k, v in tree.items()}},
    )


@rule("MLC002", needs="checkpoint_layout")
def saved_slice(layout: CheckpointLayout, ctx: RuleContext) -> Iterator[Finding]:
    ratio_min = ctx.params.min_ratio
    min_extra = ctx.params.min_extra_bytes
    by_storage: dict[str, list] = {}
    for t in layout.info.tensors:
        if t.storage_nbytes is not None and t.storage_key is not None:
            by_storage.setdefault(t.storage_key, []).append(t)
    for users in by_storage.values():
        # The file holds each storage once, whole, however little of it the tensors use.
        t = users[0]
        used = max(u.storage_offset * (u.nbytes // max(u.numel, 1)) + u.nbytes for u in users)
        extra = t.storage_nbytes - used
        if t.nbytes and t.storage_nbytes >= ratio_min * used and extra >= min_extra:
            yield ctx.finding(
                f"tensor is a view of a {format_bytes(t.storage_nbytes)} storage but uses only "
                f"{format_bytes(used)} "
                f"({t.storage_nbytes / max(used, 1):.1f}x): the whole storage is saved "
                f"(a slice or view saved without .clone()), {format_bytes(extra)} wasted",
                Location(layout.info.rel, pointer=t.name),
                evidence={"storage_bytes": t.storage_nbytes, "tensor_bytes": t.nbytes,
                          "used_bytes": used, "wasted_bytes": extra},
                fix_hint=f"{ctx.fix_command(layout.info.rel, 'safetensors')}  "
                         "(or tensor.clone() before saving)",
                fix_args={"tensors": tuple(u.name for u in users)},
            )


@rule("MLC003", needs="checkpoint_stats")
def duplicate_bytes(stats: CheckpointStats, ctx: RuleContext) -> Iterator[Finding]:
    min_bytes = ctx.params.min_bytes
    for group in stats.duplicates:
        first = stats.tensors[group[0]]
        nbytes = next((t.nbytes for t in stats.info.tensors if t.name == group[0]), 0)
        if nbytes < min_bytes:
            continue
        yield ctx.finding(
            f"the same {format_bytes(nbytes)} of tensor data is stored {len(group)} times in separate "
            f"storages ({', '.join(group[1:])}): {format_bytes(nbytes * (len(group) - 1))} duplicated",
            Location(stats.info.rel, pointer=group[0]),
            evidence={"copies": len(group), "tensor_bytes": nbytes, "tensors": list(group),
                      "duplicated_bytes": nbytes * (len(group) - 1), "shape": list(first.shape)},
            fix_hint=f"{ctx.fix_command(stats.info.rel, 'dedupe')}  "
                     "(stores the bytes once; tie the tensors if intended)",
            fix_args={"tensors": tuple(group)},
        )


@rule("MLC004", needs="checkpoint_layout")
def optimizer_in_inference_artifact(layout: CheckpointLayout, ctx: RuleContext) -> Iterator[Finding]:
    if layout.role not in ("inference", None) or not layout.model:
        return  # a checkpoint marked for training keeps its state; a bare optimizer file has no model
    sections = layout.bytes_by_section()
    training = sections["optimizer"] + sections["scheduler"]
    total = sum(sections.values())
    has_training_state = layout.optimizer is not None or layout.scheduler_keys
    if not has_training_state or not total:
        return
    share = training / total
    # inference artifacts: any real share; unmarked files: when training state dominates them
    limit = ctx.params.min_share if layout.role == "inference" else ctx.params.heavy_share
    if share < limit:
        return
    what = " and ".join(x for x, on in (("optimizer", layout.optimizer is not None),
                                         ("scheduler", bool(layout.scheduler_keys))) if on)
    where = sorted({*((layout.optimizer.prefix.rstrip(".") or "(top level)",) if layout.optimizer else ()),
                    *layout.scheduler_keys})
    role = (f"inference artifact ({layout.role_source})" if layout.role == "inference"
            else "checkpoint not marked for training (artifact_role)")
    yield ctx.finding(
        f"{role} carries {what} state under {', '.join(where)}: "
        f"{format_bytes(training)} of {format_bytes(total)} tensor bytes ({share:.0%}) are training-only",
        Location(layout.info.rel),
        evidence={"training_state_bytes": training, "tensor_bytes": total, "share": round(share, 4),
                  "role_source": layout.role_source, "training_keys": where,
                  **{f"{k}_bytes": v for k, v in sections.items()}},
        fix_hint=f"{ctx.fix_command(layout.info.rel, 'strip-optimizer')}  (keeps only the model weights)",
        fix_args={"state_key": layout.model_prefix.rstrip("."), "drop": tuple(where)},
    )


@rule("MLC005", needs="checkpoint_layout")
def wrapper_prefix(layout: CheckpointLayout, ctx: RuleContext) -> Iterator[Finding]:
    if layout.wrapper_prefix is None:
        return
    n = len(layout.model)
    origin = "DataParallel/DistributedDataParallel" if layout.wrapper_prefix == "module." else "torch.compile"
    yield ctx.finding(
        f"all {n} model keys start with {layout.wrapper_prefix!r} (left by {origin}): "
        "load_state_dict on the plain model fails without renaming",
        Location(layout.info.rel, pointer=layout.model[0].info.name),
        evidence={"prefix": layout.wrapper_prefix, "keys": n},
        fix_hint=(
            f"{ctx.fix_command(layout.info.rel, 'strip-prefix')}  "
            "(or save model.module.state_dict() / the uncompiled model)"
        ),
        fix_args={"prefixes": layout.wrapper_prefix},
    )
