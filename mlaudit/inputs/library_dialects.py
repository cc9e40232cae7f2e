"""Mappers for the training libraries beyond the five core dialects (see dialects.py): each
reads one library's own keys into the normalized fields, with that library's defaults.

The defaults assumed (library versions in docs/dialects.md):
- torchtune: `clip_grad_norm` unset or null = no clipping; `seed: null` = a fresh random seed
  each run; validation only when `run_val_every_n_steps` is set (with `dataset_val`).
- llm-foundry (Composer): no clipping unless `algorithms.gradient_clipping`; evaluation only
  with `eval_loader` / `icl_tasks` / `eval_gauntlet`.
- GPT-NeoX: several YAML files are merged by `deepy.py`, so a file is never complete on its
  own (`partial`); `a-b` and `a_b` are the same key.
- Ultralytics: `optimizer: auto` picks the optimizer and learning rate itself.
- YACS/fvcore and project OmegaConf schemas: the defaults live in the project's code, so only
  what the file writes is judged (`partial`).
- LLaMA-Factory: HfArgumentParser over its own dataclasses plus TrainingArguments; its own
  keys are not TrainingArguments typos.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlaudit.inputs.dialects import Mapped, _num, _opt_name, _precision, get_path, map_huggingface

PREFERENCE_WORDS = ("dpo", "ppo", "grpo", "kto", "orpo", "simpo", "ipo", "rlhf", "reward")


def _written(data: Mapping[str, Any], name: str) -> str | None:
    """The key as written for `name`, accepting `a-b` for `a_b` (GPT-NeoX style)."""
    for k in data:
        if str(k).replace("-", "_") == name:
            return str(k)
    return None


def _clip_value(m: Mapped, data: Mapping[str, Any], key: str) -> None:
    """A clip-norm key: written null or 0 means no clipping; the line stays the written one."""
    if key in data:
        value = _num(data[key])
        m.values["grad_clip"] = 0.0 if value is None else value
        m.keys["grad_clip"] = key


# --------------------------------------------------------------------------- torchtune
def map_torchtune(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        m.put("optimizer", _opt_name(opt.get("_component_")), "optimizer._component_")
        m.put("lr", _num(opt.get("lr")), "optimizer.lr")
        m.put("weight_decay", _num(opt.get("weight_decay")), "optimizer.weight_decay")
        if m.values.get("optimizer") == "adamw":
            m.default("weight_decay", 0.01, "optimizer.weight_decay")  # torch.optim.AdamW default
    _clip_value(m, data, "clip_grad_norm")
    m.default("grad_clip", 0.0, "clip_grad_norm")  # recipes clip only when clip_grad_norm is set
    m.put("seed", _num(data.get("seed")), "seed")
    m.put("epochs", _num(data.get("epochs")), "epochs")
    m.put("batch_size", _num(data.get("batch_size")), "batch_size")
    dtype = str(data.get("dtype") or "").lower()
    if dtype in {"bf16", "fp16", "fp32"}:
        m.put("precision", dtype, "dtype")
    if "dataset_val" in data:
        m.put("validation", data.get("run_val_every_n_steps") is not None, "run_val_every_n_steps")
    else:
        m.auto.add("validation")  # this recipe may have no validation loop at all
    m.auto.add("save_checkpoints")  # recipes save every epoch
    model = str(get_path(data, "model._component_") or "")
    loss = str(get_path(data, "loss._component_") or "").lower()
    if any(w in loss for w in PREFERENCE_WORDS):
        m.values["regime"] = "preference"
    elif "lora" in model.lower() or "qlora" in model.lower():
        m.values["regime"] = "lora"
    elif model:
        m.values["regime"] = "full"
    return m


# --------------------------------------------------------------------------- llm-foundry
_FOUNDRY_PRECISION = {"amp_bf16": "bf16-mixed", "amp_fp16": "fp16-mixed", "fp32": "fp32", "amp_fp8": "fp8"}


def map_llm_foundry(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        m.put("optimizer", _opt_name(opt.get("name")), "optimizer.name")
        m.put("lr", _num(opt.get("lr")), "optimizer.lr")
        m.put("weight_decay", _num(opt.get("weight_decay")), "optimizer.weight_decay")
    clip = get_path(data, "algorithms.gradient_clipping")
    if isinstance(clip, Mapping):
        m.put("grad_clip", _num(clip.get("clipping_threshold")),
              "algorithms.gradient_clipping.clipping_threshold")
    m.default("grad_clip", 0.0, "algorithms.gradient_clipping")
    precision = data.get("precision")
    if isinstance(precision, str):
        m.put("precision", _FOUNDRY_PRECISION.get(precision.lower(), precision.lower()), "precision")
    m.put("seed", _num(data.get("seed")), "seed")
    m.put("batch_size", _num(data.get("global_train_batch_size")), "global_train_batch_size")
    evals = [k for k in ("eval_loader", "eval_loaders", "icl_tasks", "eval_gauntlet") if data.get(k)]
    if evals:
        m.put("validation", True, evals[0])
    else:
        m.default("validation", False, "eval_loader")  # no eval data: Composer never evaluates
    if any(data.get(k) for k in ("save_folder", "save_interval")) or _has_checkpointer(data):
        m.put("save_checkpoints", True, "save_folder" if "save_folder" in data else "callbacks")
    else:
        m.auto.add("save_checkpoints")
    model = data.get("model") if isinstance(data.get("model"), Mapping) else {}
    if evals and not data.get("optimizer") and not data.get("train_loader"):
        m.values["regime"] = "eval"  # scripts/eval yamls: a model, benchmarks, no training
    elif model.get("peft_config"):
        m.values["regime"] = "lora"
    elif model.get("pretrained") is True or model.get("load_path") or data.get("load_path"):
        m.values["regime"] = "full"
    elif model.get("pretrained") is False or (model and "pretrained_model_name_or_path" not in model):
        m.values["regime"] = "pretraining"
    return m


def _has_checkpointer(data: Mapping[str, Any]) -> bool:
    callbacks = data.get("callbacks")
    return isinstance(callbacks, Mapping) and any("checkpoint" in str(k) for k in callbacks)


# --------------------------------------------------------------------------- GPT-NeoX
def map_gpt_neox(data: Mapping[str, Any]) -> Mapped:
    m = Mapped(partial=True)  # deepy.py merges several YAML files into one run

    def put(name: str, key: str, value: Any = None) -> None:
        written = _written(data, key)
        if written is not None:
            m.put(name, _num(data[written]) if value is None else value, written)

    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        m.put("optimizer", _opt_name(opt.get("type")), "optimizer.type")
        params = opt.get("params") if isinstance(opt.get("params"), Mapping) else {}
        m.put("lr", _num(params.get("lr")), "optimizer.params.lr")
    put("weight_decay", "weight_decay")
    if _written(data, "gradient_clipping"):
        _clip_value(m, data, _written(data, "gradient_clipping") or "gradient_clipping")
    put("seed", "seed")
    put("max_steps", "train_iters")
    for name in ("bf16", "fp16"):
        section = data.get(name)
        if isinstance(section, Mapping) and section.get("enabled") is True:
            m.put("precision", f"{name}-mixed", f"{name}.enabled")
            break
    finetune = data.get(_written(data, "finetune") or "finetune")
    impl = str(data.get(_written(data, "train_impl") or "train_impl") or "")
    if impl.lower() in PREFERENCE_WORDS:
        m.values["regime"] = "preference"
    elif finetune is True:
        m.values["regime"] = "full"
    return m


# --------------------------------------------------------------------------- Ultralytics
def map_ultralytics(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    optimizer = str(data.get("optimizer") or "auto")
    if optimizer.lower() != "auto":  # auto chooses optimizer *and* learning rate itself
        m.put("optimizer", _opt_name(optimizer), "optimizer")
        m.put("lr", _num(data.get("lr0")), "lr0")
    m.put("weight_decay", _num(data.get("weight_decay")), "weight_decay")
    m.put("seed", _num(data.get("seed")), "seed")
    m.put("deterministic", data.get("deterministic"), "deterministic")
    m.put("epochs", _num(data.get("epochs")), "epochs")
    if isinstance(data.get("amp"), bool):
        m.put("precision", "fp16-mixed" if data["amp"] else "fp32", "amp")
    if isinstance(data.get("val"), bool):
        m.put("validation", data["val"], "val")
    m.auto.update({"save_checkpoints", "grad_clip"})  # the trainer clips at 10.0 itself
    return m


# --------------------------------------------------------------------------- YACS / fvcore
def map_yacs(data: Mapping[str, Any]) -> Mapped:
    m = Mapped(partial=True)  # the project's defaults.py holds every key not written here
    solver = data.get("SOLVER") if isinstance(data.get("SOLVER"), Mapping) else {}
    for name, keys in {
        "optimizer": ("OPTIMIZING_METHOD", "OPTIMIZER_NAME", "OPTIMIZER"),
        "lr": ("BASE_LR",),
        "weight_decay": ("WEIGHT_DECAY",),
        "grad_clip": ("CLIP_GRAD_L2NORM", "CLIP_GRAD_VAL"),
    }.items():
        for key in keys:
            if key in solver:
                value = solver[key]
                m.put(name, _opt_name(value) if name == "optimizer" else _num(value), f"SOLVER.{key}")
                break
    for key in ("RNG_SEED", "SEED"):
        if key in data:
            m.put("seed", _num(data[key]), key)
            break
    return m


# --------------------------------------------------------------------------- timm
_TIMM_OPT = {"momentum": "sgd", "nesterov": "sgd", "fusedlamb": "lamb", "fusedadamw": "adamw"}


def map_timm(data: Mapping[str, Any]) -> Mapped:
    """timm train.py's `args.yaml`: the whole argparse namespace, so every key is written;
    a null means the argument's default (clip_grad None: no clipping, decided by nobody)."""
    m = Mapped()
    opt = str(data.get("opt") or "").lower()
    m.put("optimizer", _opt_name(_TIMM_OPT.get(opt, opt)) if opt else None, "opt")
    m.put("lr", _num(data.get("lr")), "lr")
    m.put("weight_decay", _num(data.get("weight_decay")), "weight_decay")
    clip = _num(data.get("clip_grad"))
    if clip is None:
        m.auto.add("grad_clip")
    else:
        m.put("grad_clip", clip, "clip_grad")
    if isinstance(data.get("amp"), bool):
        dtype = str(data.get("amp_dtype") or "float16").lower()
        mixed = "bf16-mixed" if "bf" in dtype else "fp16-mixed"
        m.put("precision", mixed if data["amp"] else "fp32", "amp")
    m.put("seed", _num(data.get("seed")), "seed")
    m.put("epochs", _num(data.get("epochs")), "epochs")
    m.put("batch_size", _num(data.get("batch_size")), "batch_size")
    m.put("dropout", _num(data.get("drop")), "drop")
    m.auto.update({"validation", "save_checkpoints"})  # train.py validates and saves every epoch
    if data.get("pretrained") is True or data.get("initial_checkpoint") or data.get("resume"):
        m.values["regime"] = "full"
    elif data.get("pretrained") is False:
        m.values["regime"] = "pretraining"
    return m


# --------------------------------------------------------------------------- fairseq
def map_fairseq(data: Mapping[str, Any]) -> Mapped:
    """fairseq Hydra/dataclass config groups (common, optimization, checkpoint, ...), with the
    FairseqConfig defaults: clip_norm 0.0 (no clipping), fp16/bf16 off, seed 1."""
    m = Mapped()
    optimization = data.get("optimization") if isinstance(data.get("optimization"), Mapping) else {}
    common = data.get("common") if isinstance(data.get("common"), Mapping) else {}
    optimizer = data.get("optimizer") if isinstance(data.get("optimizer"), Mapping) else {}
    if "clip_norm" in optimization:
        _clip_value(m, {"optimization.clip_norm": optimization["clip_norm"]}, "optimization.clip_norm")
    m.default("grad_clip", 0.0, "optimization.clip_norm")
    lr = optimization.get("lr")
    m.put("lr", _num(lr[0] if isinstance(lr, list) and lr else lr), "optimization.lr")
    m.put("max_steps", _num(optimization.get("max_update")) or None, "optimization.max_update")
    m.put("optimizer", _opt_name(optimizer.get("_name")), "optimizer._name")
    m.put("weight_decay", _num(optimizer.get("weight_decay")), "optimizer.weight_decay")
    if common.get("bf16") is True:
        m.put("precision", "bf16-mixed", "common.bf16")
    elif common.get("fp16") is True or common.get("memory_efficient_fp16") is True:
        m.put("precision", "fp16-mixed", "common.fp16")
    m.default("precision", "fp32", "common.fp16")
    m.put("seed", _num(common.get("seed")), "common.seed")
    m.default("seed", 1, "common.seed")
    dataset = data.get("dataset") if isinstance(data.get("dataset"), Mapping) else {}
    if dataset.get("disable_validation") is True:
        m.put("validation", False, "dataset.disable_validation")
    else:
        m.auto.add("validation")  # validates every epoch unless disabled
    checkpoint = data.get("checkpoint") if isinstance(data.get("checkpoint"), Mapping) else {}
    if checkpoint.get("no_save") is True:
        m.put("save_checkpoints", False, "checkpoint.no_save")
    else:
        m.auto.add("save_checkpoints")
    restore = checkpoint.get("restore_file")
    if checkpoint.get("finetune_from_model") or restore not in (None, "checkpoint_last.pt"):
        m.values["regime"] = "full"
    return m


# --------------------------------------------------------------------------- axolotl
def map_axolotl(data: Mapping[str, Any]) -> Mapped:
    """axolotl YAML: its own keys, handed to the HF Trainer (so TrainingArguments defaults:
    max_grad_norm 1.0, weight_decay 0.0, seed 42). `bf16: auto` is decided by the hardware;
    evaluation needs `val_set_size` > 0 or `test_datasets`."""
    m = Mapped()
    m.put("lr", _num(data.get("learning_rate")), "learning_rate")
    m.put("optimizer", _opt_name(data.get("optimizer")), "optimizer")
    m.put("weight_decay", _num(data.get("weight_decay")), "weight_decay")
    m.put("grad_clip", _num(data.get("max_grad_norm")), "max_grad_norm")
    m.default("grad_clip", 1.0, "max_grad_norm")
    m.put("seed", _num(data.get("seed")), "seed")
    m.default("seed", 42, "seed")
    m.put("epochs", _num(data.get("num_epochs")), "num_epochs")
    bf16, fp16 = data.get("bf16"), data.get("fp16")
    if str(bf16).lower() == "auto" or str(fp16).lower() == "auto":
        m.auto.add("precision")
    elif bf16 is True:
        m.put("precision", "bf16-mixed", "bf16")
    elif fp16 is True:
        m.put("precision", "fp16-mixed", "fp16")
    val = _num(data.get("val_set_size"))
    if data.get("test_datasets") or (isinstance(val, (int, float)) and val > 0):
        m.put("validation", True, "test_datasets" if data.get("test_datasets") else "val_set_size")
    elif "val_set_size" in data:
        m.put("validation", False, "val_set_size")
    else:
        m.default("validation", False, "val_set_size")
    m.auto.add("save_checkpoints")  # the HF Trainer saves by its save_strategy default
    rl = str(data.get("rl") or "").lower()
    adapter = str(data.get("adapter") or "").lower()
    if rl:
        m.values["regime"] = "preference"
    elif adapter in {"lora", "qlora"}:
        m.values["regime"] = "lora"
    else:
        m.values["regime"] = "full"
    return m


# --------------------------------------------------------------------------- LitGPT
def map_litgpt(data: Mapping[str, Any]) -> Mapped:
    """LitGPT (jsonargparse) configs: `train.max_norm` unset or null = no clipping (its
    TrainArgs default), seed 42, precision written at the top level."""
    m = Mapped()
    train = data.get("train") if isinstance(data.get("train"), Mapping) else {}
    if data.get("checkpoint_dir"):
        # every `litgpt finetune*` recipe rejects train.max_norm ("unsupported"): clipping is
        # the recipe's business, nothing the file can change
        m.auto.add("grad_clip")
    elif "max_norm" in train:
        value = _num(train["max_norm"])
        m.values["grad_clip"] = 0.0 if value is None else value
        m.keys["grad_clip"] = "train.max_norm"
    m.default("grad_clip", 0.0, "train.max_norm")
    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        args = opt.get("init_args") if isinstance(opt.get("init_args"), Mapping) else {}
        m.put("optimizer", _opt_name(opt.get("class_path")), "optimizer.class_path")
        m.put("lr", _num(args.get("lr")), "optimizer.init_args.lr")
        m.put("weight_decay", _num(args.get("weight_decay")), "optimizer.init_args.weight_decay")
    elif isinstance(opt, str):
        m.put("optimizer", _opt_name(opt), "optimizer")
    m.put("precision", _precision(data.get("precision")), "precision")
    m.put("seed", _num(data.get("seed")), "seed")
    m.default("seed", 42, "seed")
    m.put("epochs", _num(train.get("epochs")), "train.epochs")
    # every LitGPT model is a GPT-style transformer language model, whatever its name
    m.put("model_target", f"transformer LM {data.get('model_name') or ''}".strip(), "model_name")
    m.auto.update({"validation", "save_checkpoints"})  # eval/save intervals have defaults
    if data.get("lora_r") or "lora" in str(data.get("lora_query", "")).lower():
        m.values["regime"] = "lora"
    elif data.get("checkpoint_dir"):
        m.values["regime"] = "full"
    elif "initial_checkpoint_dir" in data and not data.get("initial_checkpoint_dir"):
        m.values["regime"] = "pretraining"
    return m


# --------------------------------------------------------------------------- others
_CLIP_KEYS = ("max_norm", "clip_grad", "grad_clip", "clip_grad_norm", "gradient_clip_val",
              "max_grad_norm", "clip_norm", "gradient_clipping")


def map_omegaconf(data: Mapping[str, Any]) -> Mapped:
    """Project-defined schema (Stability `target/params`, dinov2): only written values count.
    A clipping key written empty or 0 (`max_norm:`) still says clipping is off."""
    m = Mapped(partial=True)
    for path, value in _leaves(data):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in _CLIP_KEYS and "grad_clip" not in m.values and not isinstance(value, (Mapping, list)):
            m.values["grad_clip"] = 0.0 if value is None else _num(value)
            m.keys["grad_clip"] = path
        if leaf in ("fp16", "use_fp16", "use_amp") and value is True and "precision" not in m.values:
            m.put("precision", "fp16-mixed", path)
    return m


def _leaves(data: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(data, Mapping) and depth < 8:
        for k, v in data.items():
            sub = f"{prefix}.{k}" if prefix else str(k)
            out.append((sub, v))
            out.extend(_leaves(v, sub, depth + 1))
    return out


def map_accelerate(data: Mapping[str, Any]) -> Mapped:
    """A launcher: no training settings of its own (its DeepSpeed file is judged as DeepSpeed)."""
    return Mapped(partial=True)


def map_data(data: Mapping[str, Any]) -> Mapped:
    """A dataset description: paths, classes and a download, no training settings."""
    return Mapped(partial=True)


def map_llamafactory(data: Mapping[str, Any]) -> Mapped:
    if "model_name_or_path" not in data and "stage" not in data:
        m = Mapped(partial=True)  # the v1 schema: too young to judge beyond written values
        m.put("lr", _num(data.get("learning_rate")), "learning_rate")
        return m
    m = map_huggingface(data)
    m.unknown.clear()  # its own ModelArguments/DataArguments/FinetuningArguments keys are fine
    stage = str(data.get("stage") or "sft").lower()
    if stage in {"dpo", "kto", "orpo", "ppo", "rm", "simpo"}:
        m.values["regime"] = "preference"
    elif str(data.get("finetuning_type") or "").lower() in {"lora", "freeze", "oft"}:
        m.values["regime"] = "lora"
    elif stage == "pt":
        m.values["regime"] = "pretraining"
    else:
        m.values["regime"] = "full"
    return m


# --------------------------------------------------------------------------- mmengine
def map_mmengine(data: Mapping[str, Any]) -> Mapped:
    """mmengine/mmcv Python config modules (read by py_config, bases merged): partial - the
    runner's defaults and the registries' classes decide what is not written. `clip_grad=None`
    written = no clipping; `randomness.seed=None` = a new seed per run (MLR005 reads it)."""
    m = Mapped(partial=True)
    wrapper = data.get("optim_wrapper") if isinstance(data.get("optim_wrapper"), Mapping) else None
    if wrapper is not None:
        opt = wrapper.get("optimizer") if isinstance(wrapper.get("optimizer"), Mapping) else {}
        where = "optim_wrapper.optimizer"
        if "clip_grad" in wrapper:
            clip = wrapper["clip_grad"]
            value = clip.get("max_norm") if isinstance(clip, Mapping) else clip
            m.put("grad_clip", 0.0 if value is None else _num(value), "optim_wrapper.clip_grad")
        if str(wrapper.get("type") or "") == "AmpOptimWrapper":
            dtype = str(wrapper.get("dtype") or "float16")
            m.put("precision", "bf16-mixed" if "bf" in dtype else "16-mixed", "optim_wrapper.type")
    else:  # mmcv 0.x/1.x: `optimizer = dict(type=..., lr=...)`
        opt = data.get("optimizer") if isinstance(data.get("optimizer"), Mapping) else {}
        where = "optimizer"
    if opt:
        m.put("optimizer", _opt_name(opt.get("type")), f"{where}.type")
        m.put("lr", _num(opt.get("lr")), f"{where}.lr")
        m.put("weight_decay", _num(opt.get("weight_decay")), f"{where}.weight_decay")
    randomness = data.get("randomness")
    if isinstance(randomness, Mapping) and "seed" in randomness and randomness["seed"] is not None:
        m.put("seed", _num(randomness["seed"]), "randomness.seed")
    train_cfg = data.get("train_cfg")
    if isinstance(train_cfg, Mapping):
        m.put("epochs", _num(train_cfg.get("max_epochs")), "train_cfg.max_epochs")
    return m


LIBRARY_MAPPERS = {
    "torchtune": map_torchtune, "llm-foundry": map_llm_foundry, "gpt-neox": map_gpt_neox,
    "ultralytics": map_ultralytics, "yacs": map_yacs, "omegaconf": map_omegaconf,
    "accelerate": map_accelerate, "ultralytics-data": map_data, "llamafactory": map_llamafactory,
    "timm": map_timm, "fairseq": map_fairseq, "axolotl": map_axolotl, "litgpt": map_litgpt,
    "mmengine": map_mmengine,
}  # fmt: skip
