"""What a checkpoint holds, from its header alone: model tensors (parameters vs buffers),
optimizer and scheduler state, wrapper key prefixes, the parameter tree and memory estimates.

Input kind `checkpoint_layout` (no tensor data is read, so a safetensors file of any size is
counted in the time it takes to read its header). `checkpoint_stats` builds on it.

Mapping optimizer state to parameters (documented assumption): a torch optimizer's
`state_dict()` keys parameters by integer index, numbered in the order the parameters were
passed to the optimizer, group after group. mlaudit assumes that order is the order of the
model state dict's *parameters* (buffers skipped, tied tensors once), which holds for
`optimizer(model.parameters())`. The mapping is accepted only when the counts agree and every
optimizer moment has the shape of the parameter it is mapped to; otherwise the findings name
the optimizer index and say why no name could be given, rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.checkpoint.types import CheckpointInfo, TensorInfo
from mlaudit.inputs.training_config import TrainingConfig, config_for_checkpoint
from mlaudit.model import ArtifactSummary

# Top-level keys that conventionally hold the model's state dict, most specific first.
MODEL_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network",
              "weights", "module")  # fmt: skip
SCHEDULER_HINTS = ("scheduler", "lr_scheduler", "sched")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Last name components of tensors that are buffers, not parameters, in common modules.
BUFFER_NAMES = frozenset({
    "running_mean", "running_var", "num_batches_tracked", "position_ids", "inv_freq",
    "attn_mask", "causal_mask", "mask", "masked_bias", "_float_tensor", "token_type_ids",
})  # fmt: skip
ROLE_WORDS = ("export", "inference", "deploy", "serving", "release", "infer")
_STATE_RE = re.compile(r"^state\.(\d+)\.([A-Za-z0-9_]+)$")
# Per-parameter state names of torch.optim optimizers: found as `<prefix>state.<i>.<name>`
# tensors, they mark optimizer state by its structure even where `param_groups` was not saved
# (a flattened safetensors file) and whatever the container key is called.
MOMENT_NAMES = frozenset({
    "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta",
    "exp_inf", "mu_product", "prev", "step_size", "grad_avg", "mu", "eta",
})  # fmt: skip
_MOMENT_RE = re.compile(r"(?:^|\.)state\.\d+\.([A-Za-z0-9_]+)$")
FLOAT_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16"})


@dataclass(frozen=True)
class ModelTensor:
    """A tensor of the model's state dict. `key` is its state-dict key (container removed)."""

    info: TensorInfo
    key: str
    kind: str  # param | buffer
    tied_to: str | None = None  # key of the first tensor sharing its storage


@dataclass(frozen=True)
class OptimizerState:
    """An optimizer's state dict found inside the checkpoint (names relative to the file)."""

    prefix: str  # e.g. "optimizer." ("" when the file is a bare optimizer state dict)
    param_ids: tuple[int, ...]  # indices from param_groups, in group order
    group_of: Mapping[int, int]
    groups: tuple[Mapping[str, Any], ...]  # lr, betas, eps, weight_decay per group
    state: Mapping[int, Mapping[str, TensorInfo]]  # index -> {exp_avg_sq: TensorInfo, ...}
    scalar_steps: Mapping[int, float]  # steps stored as plain numbers (older torch)
    names: Mapping[int, str] = field(default_factory=dict)  # index -> tensor name, if mapped
    mapping_problem: str | None = None  # why no names were given, when they were not

    @property
    def kind(self) -> str:
        """adam-like | sgd-momentum | unknown, from the state's tensor names."""
        keys = {k for per in self.state.values() for k in per}
        if "exp_avg_sq" in keys:
            return "adam-like"
        if "momentum_buffer" in keys:
            return "sgd-momentum"
        return "unknown"

    @property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(t.name for per in self.state.values() for t in per.values())

    def label(self, idx: int) -> str:
        """The parameter's tensor name when mapped, else the optimizer state's own name."""
        return self.names.get(idx) or f"{self.prefix}state.{idx}"


@dataclass(frozen=True)
class CheckpointLayout:
    """Header-level view of one checkpoint plus the training config that belongs to it."""

    info: CheckpointInfo
    config: TrainingConfig | None
    model_prefix: str  # "state_dict." etc., "" for a bare state dict
    model: tuple[ModelTensor, ...]
    optimizer: OptimizerState | None
    scheduler_tensors: tuple[TensorInfo, ...]
    scheduler_keys: tuple[str, ...]
    other: tuple[TensorInfo, ...]
    wrapper_prefix: str | None
    role: str | None  # inference | training | None
    role_source: str

    @property
    def params(self) -> list[ModelTensor]:
        return [m for m in self.model if m.kind == "param" and m.tied_to is None]

    @property
    def buffers(self) -> list[ModelTensor]:
        return [m for m in self.model if m.kind == "buffer" and m.tied_to is None]

    def param_count(self) -> int:
        return sum(m.info.numel for m in self.params)

    def buffer_count(self) -> int:
        return sum(m.info.numel for m in self.buffers)

    def trainable(self) -> tuple[int | None, str]:
        """(trainable element count or None, how it was decided)."""
        opt = self.optimizer
        if opt is None:
            return None, "no optimizer state: cannot tell trainable from frozen"
        if opt.names:
            return sum(m.info.numel for m in self.params if m.info.name in set(opt.names.values())), \
                "parameters listed in the optimizer's param_groups"
        return None, opt.mapping_problem or "optimizer indices could not be mapped to names"

    def module_tree(self) -> dict[str, dict[str, Any]]:
        """Per top-level module: params, buffers and second-level children (tied once)."""
        tree: dict[str, dict[str, Any]] = {}
        for m in self.model:
            if m.tied_to is not None:
                continue
            key = strip_wrapper(m.key)
            parts = key.split(".")
            top = parts[0]
            node = tree.setdefault(top, {"params": 0, "buffers": 0, "children": {}})
            node["params" if m.kind == "param" else "buffers"] += m.info.numel
            if len(parts) > 2:
                child = parts[1]
                node["children"][child] = node["children"].get(child, 0) + m.info.numel
        return tree

    def bytes_by_section(self) -> dict[str, int]:
        """Stored bytes of model, optimizer, scheduler and other tensors (shared storage once)."""
        out = {"model": 0, "optimizer": 0, "scheduler": 0, "other": 0}
        out["model"] = sum(m.info.nbytes for m in self.model if m.tied_to is None)
        opt_names = set(self.optimizer.tensor_names) if self.optimizer else set()
        out["optimizer"] = sum(t.nbytes for t in self.info.tensors if t.name in opt_names)
        out["scheduler"] = sum(t.nbytes for t in self.scheduler_tensors)
        out["other"] = sum(t.nbytes for t in self.other)
        return out


def strip_wrapper(key: str, prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> str:
    """`module._orig_mod.fc.weight` -> `fc.weight` (prefixes removed repeatedly, in any order)."""
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def _is_buffer(key: str, t: TensorInfo) -> bool:
    last = key.rsplit(".", 1)[-1]
    return last in BUFFER_NAMES or t.dtype not in FLOAT_DTYPES


def _optimizer_prefixes(meta: Mapping[str, Any], names: list[str]) -> list[str]:
    """Prefixes of optimizer state dicts, found by structure: a `param_groups` entry, or
    `state.<i>.<moment>` tensors (exp_avg, exp_avg_sq, momentum_buffer...), under any key."""
    found: list[str] = []
    for key in list(meta) + names:
        i = key.find("param_groups.")
        if i >= 0 and (i == 0 or key[i - 1] == "."):
            p = key[:i]
            if p not in found:
                found.append(p)
    for name in names:
        m = _MOMENT_RE.search(name)
        if m and m.group(1) in MOMENT_NAMES:
            p = name[: m.start() + (1 if m.group(0).startswith(".") else 0)]
            if p not in found:
                found.append(p)
    return found


def _parse_optimizer(prefix: str, info: CheckpointInfo) -> OptimizerState:
    meta = info.metadata
    groups: dict[int, dict[str, Any]] = {}
    members: dict[int, list[tuple[int, int]]] = {}
    pg = prefix + "param_groups."
    for key, value in meta.items():
        if not key.startswith(pg):
            continue
        parts = key[len(pg):].split(".")
        if not parts[0].isdigit():
            continue
        g = int(parts[0])
        groups.setdefault(g, {})
        if len(parts) == 3 and parts[1] == "params" and parts[2].isdigit():
            members.setdefault(g, []).append((int(parts[2]), int(value)))
        elif len(parts) == 2:
            groups[g][parts[1]] = value
        elif len(parts) == 3 and parts[1] == "betas":
            groups[g].setdefault("betas", {})[int(parts[2])] = value
    param_ids: list[int] = []
    group_of: dict[int, int] = {}
    for g in sorted(members):
        for _, idx in sorted(members[g]):
            param_ids.append(idx)
            group_of[idx] = g
    state: dict[int, dict[str, TensorInfo]] = {}
    for t in info.tensors:
        if t.name.startswith(prefix):
            m = _STATE_RE.match(t.name[len(prefix):])
            if m:
                state.setdefault(int(m.group(1)), {})[m.group(2)] = t
    steps: dict[int, float] = {}
    sp = prefix + "state."
    for key, value in meta.items():
        if key.startswith(sp) and key.endswith(".step") and isinstance(value, (int, float)):
            number = key[len(sp):-len(".step")]
            if number.isdigit():
                steps[int(number)] = float(value)
    norm_groups = []
    for g in sorted(groups):
        d = dict(groups[g])
        if isinstance(d.get("betas"), dict):
            d["betas"] = tuple(d["betas"][k] for k in sorted(d["betas"]))
        norm_groups.append(d)
    return OptimizerState(prefix, tuple(param_ids), group_of, tuple(norm_groups), state, steps)


def _map_optimizer(opt: OptimizerState, params: list[ModelTensor]) -> OptimizerState:
    from dataclasses import replace

    n_opt, n_model = len(opt.param_ids), len(params)
    if n_opt == 0:
        return replace(opt, mapping_problem="the optimizer lists no parameters")
    if n_opt != n_model:
        return replace(opt, mapping_problem=(
            f"the optimizer lists {n_opt} parameters but the model state dict has {n_model} "
            "(frozen parameters or another parameter order): indices not mapped to names"))
    names = {}
    for idx, m in zip(opt.param_ids, params, strict=True):
        for t in opt.state.get(idx, {}).values():
            if t.numel > 1 and tuple(t.shape) != tuple(m.info.shape):
                return replace(opt, mapping_problem=(
                    f"optimizer index {idx} has shape {list(t.shape)} but parameter {m.key} has "
                    f"{list(m.info.shape)}: parameter groups are not in model order, indices not mapped"))
        names[idx] = m.info.name
    return replace(opt, names=names)


def _role(info: CheckpointInfo, config: TrainingConfig | None) -> tuple[str | None, str]:
    if config is not None and config.artifact_role:
        role = str(config.artifact_role).lower()
        return ("inference" if role in {"inference", "export", "deploy", "serving"} else role,
                f"artifact_role: {config.artifact_role} in {config.rel}")
    name = info.rel.rsplit("/", 1)[-1].lower()
    for word in ROLE_WORDS:
        if word in name:
            return "inference", f"file name contains {word!r}"
    return None, "not marked"


def build_layout(info: CheckpointInfo, config: TrainingConfig | None) -> CheckpointLayout:
    """Classify every tensor of `info` (header only)."""
    names = [t.name for t in info.tensors]
    opt_prefixes = _optimizer_prefixes(info.metadata, names)
    top = set(info.top_level_keys)
    # A bare optimizer state dict has prefix "": then nothing else is model state.
    opt_prefix = opt_prefixes[0] if opt_prefixes else None
    sched_prefixes = [k + "." for k in info.top_level_keys
                      if any(h in k.lower() for h in SCHEDULER_HINTS)]
    container = next((k for k in MODEL_KEYS if k in top and any(n.startswith(k + ".") for n in names)),
                     None)
    if container == "module" and top == {"module"}:
        container = None  # a bare DataParallel state dict: `module.` is a wrapper prefix
    model_prefix = container + "." if container else ""
    model: list[ModelTensor] = []
    sched: list[TensorInfo] = []
    other: list[TensorInfo] = []
    seen_storage: dict[tuple, str] = {}
    for t in info.tensors:
        if opt_prefix is not None and t.name.startswith(opt_prefix):
            continue  # optimizer tensors are listed in OptimizerState
        if any(t.name.startswith(p) for p in sched_prefixes):
            sched.append(t)
            continue
        if opt_prefix == "" or (model_prefix and not t.name.startswith(model_prefix)):
            other.append(t)
            continue
        if not model_prefix and any(t.name.startswith(p) for p in opt_prefixes if p):
            continue
        key = t.name[len(model_prefix):]
        skey = (t.storage_key, t.storage_offset, t.shape) if t.storage_key else None
        tied = seen_storage.get(skey) if skey else None
        if skey and tied is None:
            seen_storage[skey] = key
        model.append(ModelTensor(t, key, "buffer" if _is_buffer(key, t) else "param", tied))
    optimizer = None
    if opt_prefix is not None:
        optimizer = _parse_optimizer(opt_prefix, info)
        params = [m for m in model if m.kind == "param" and m.tied_to is None]
        optimizer = _map_optimizer(optimizer, params)
    wrapper = None
    if model and all(m.key.startswith(WRAPPER_PREFIXES) for m in model):
        wrapper = next(p for p in WRAPPER_PREFIXES if model[0].key.startswith(p))
    role, source = _role(info, config)
    return CheckpointLayout(
        info=info, config=config, model_prefix=model_prefix, model=tuple(model),
        optimizer=optimizer, scheduler_tensors=tuple(sched),
        scheduler_keys=tuple(p.rstrip(".") for p in sched_prefixes), other=tuple(other),
        wrapper_prefix=wrapper, role=role, role_source=source,
    )


def safe_config(session: Any, file: Any) -> TrainingConfig | None:
    """The checkpoint's training config, or None when there is none or it is unreadable
    (an unreadable config is reported on the config file itself)."""
    try:
        return config_for_checkpoint(session, file)
    except InputError:
        return None


MAX_INDEX_BYTES = 50 * 1024 * 1024


@input_kind("safetensors_shard_index", scope="project")
def load_shard_index(session: Any, _file: Any) -> dict[str, str]:
    """Shard rel path -> rel path of the `*.safetensors.index.json` beside it that lists it.

    Built once per scan: each index is read once, however many shards it lists."""
    import json

    owners: dict[str, str] = {}
    for index in session.files:
        if not index.rel.endswith(".safetensors.index.json"):
            continue
        try:
            if index.path.stat().st_size > MAX_INDEX_BYTES:
                continue
            weight_map = json.loads(index.path.read_text("utf-8")).get("weight_map")
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            continue  # an unreadable index is reported on the index itself
        if not isinstance(weight_map, dict):
            continue
        folder = index.rel.rsplit("/", 1)[0] + "/" if "/" in index.rel else ""
        for shard in {str(v) for v in weight_map.values()}:
            if "/" not in shard:  # only shards beside their index, as loaders resolve them
                owners.setdefault(folder + shard, index.rel)
    return owners


def indexed_by(session: Any, file: Any) -> str | None:
    """The rel path of a `*.safetensors.index.json` in the same scan that lists this shard.

    A sharded model is judged once, through its index (which sees every shard: duplicates and
    peer outliers cross shards); its shards would report every finding a second time."""
    if not file.rel.endswith(".safetensors"):
        return None
    return session.get("safetensors_shard_index").get(file.rel)


@input_kind("checkpoint_layout", scope="file", file_kinds=("checkpoint",))
def load_checkpoint_layout(session, file) -> CheckpointLayout | None:
    info = session.get("checkpoint", file)
    if info is None:
        return None
    if not session.single_file and indexed_by(session, file):
        return None  # judged through its index (security rules still read the shard itself)
    try:
        layout = build_layout(info, safe_config(session, file))
    except (ValueError, TypeError, KeyError) as err:  # odd metadata: inconclusive, not a crash
        raise InputError(file.rel, f"checkpoint layout not understood: {type(err).__name__}: {err}") from None
    session.add_artifact(ArtifactSummary(file.rel, "checkpoint-layout", layout_summary(layout)))
    return layout


def layout_summary(layout: CheckpointLayout) -> dict[str, Any]:
    """Counts for the report's artifact list (JSON): parameters, buffers, tree, sections."""
    trainable, how = layout.trainable()
    opt = layout.optimizer
    return {
        "parameters": layout.param_count(),
        "buffers": layout.buffer_count(),
        "trainable": trainable,
        "trainable_source": how,
        "tied_tensors": sum(1 for m in layout.model if m.tied_to is not None),
        "modules": layout.module_tree(),
        "bytes": layout.bytes_by_section(),
        "optimizer": None if opt is None else {
            "kind": opt.kind, "parameters": len(opt.param_ids), "with_state": len(opt.state),
            "mapped_to_names": bool(opt.names), "mapping_problem": opt.mapping_problem},
        "role": layout.role,
        "config": layout.config.rel if layout.config else None,
    }
