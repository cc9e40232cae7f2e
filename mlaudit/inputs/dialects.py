"""Config dialects: recognize which one a mapping is written in and map it to normalized fields.

Dialects: `mlaudit` (our own schema, README "Training config schema"), `huggingface`
(TrainingArguments keys), `lightning` (LightningCLI: `trainer:` + `seed_everything`),
`hydra` (OmegaConf with `_target_` / `defaults:` / `${...}`), `deepspeed` (ds_config JSON).

Nothing is imported or executed: `_target_` strings are only read, and `${...}`
interpolations are resolved statically against the document itself (resolvers such as
`${oc.env:X}` stay unresolved).

Each mapper returns a `Mapped`: normalized values, the dotted key each came from, the
library defaults that apply to keys the file left out (a missing key is not a disabled
feature: Hugging Face clips gradients at 1.0 and seeds with 42 unless told otherwise),
values that are "auto" (decided elsewhere, DeepSpeed) and keys the dialect does not know.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DIALECTS = ("mlaudit", "huggingface", "lightning", "hydra", "deepspeed")
# In-file override, e.g. `# mlaudit: dialect=lightning` anywhere in a YAML comment line.
DIALECT_COMMENT = re.compile(r"#\s*mlaudit:\s*dialect\s*=\s*([a-z]+)")


@dataclass
class Mapped:
    """What a dialect mapper found; consumed by training_config.TrainingConfig."""

    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # field -> dotted source key
    defaults: dict[str, Any] = field(default_factory=dict)  # field -> library default applied
    default_keys: dict[str, str] = field(default_factory=dict)  # field -> key the file left out
    auto: set[str] = field(default_factory=set)
    unknown: list[tuple[str, str | None]] = field(default_factory=list)  # (path, suggestion)
    partial: bool = False  # composed from other files (Hydra defaults list): missing != absent

    def put(self, name: str, value: Any, key: str) -> None:
        if value is None:
            return
        if isinstance(value, str) and value.strip().lower() == "auto":
            self.auto.add(name)
            self.keys[name] = key
            return
        self.values[name] = value
        self.keys[name] = key

    def default(self, name: str, value: Any, key: str) -> None:
        """Record the library default for a field the file did not set."""
        if name not in self.values and name not in self.auto:
            self.defaults[name] = value
            self.default_keys[name] = key


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    """(whether the dotted path exists, its value)."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def get_path(data: Any, path: str) -> Any:
    """Value at a dotted path, or None."""
    return _lookup(data, path)[1]


def deep_merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    """Merge `data` into `into` as OmegaConf/YACS do: mappings key by key, anything else
    replaces. Values are copied, so `data` (possibly a cached parse) is never shared."""
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)


def has_path(data: Any, path: str) -> bool:
    """Whether a dotted path is written, even with an empty (null) value."""
    return _lookup(data, path)[0]


def nearest(word: str, options: set[str] | frozenset[str], cutoff: float = 0.75) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=cutoff)
    return close[0] if close else None


def _unknown(m: Mapped, section: Mapping[str, Any], known: frozenset[str], prefix: str,
             only_close: bool = False, suggest_from: frozenset[str] | None = None) -> None:
    """Record keys of `section` outside `known`; `suggest_from` (default `known`) is the part of
    the schema complete enough to name a rename. With `only_close`, only near misses count."""
    for key in section:
        k = str(key)
        if k in known or k.startswith("_"):
            continue
        hint = nearest(k, known if suggest_from is None else suggest_from)
        if hint or not only_close:
            m.unknown.append((f"{prefix}{k}", hint))


# --------------------------------------------------------------------------- interpolation
_INTERP = re.compile(r"\$\{([^${}]+)\}")


def resolve_interpolations(data: Any, max_rounds: int = 8) -> Any:
    """Resolve `${a.b}` references against the root, statically; leave resolvers alone."""

    def lookup(ref: str) -> Any:
        ref = ref.strip()
        if ":" in ref or ref.startswith("."):
            return _MISSING  # a resolver (oc.env:...) or relative ref: not static
        value = get_path(root, ref)
        return _MISSING if value is None else value

    def sub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, str) and "${" in value:
            whole = _INTERP.fullmatch(value.strip())
            if whole:
                found = lookup(whole.group(1))
                return value if found is _MISSING else found
            return _INTERP.sub(lambda mt: _scalar_text(lookup(mt.group(1)), mt.group(0)), value)
        return value

    root = data
    for _ in range(max_rounds):
        new = sub(root)
        if new == root:
            break
        root = new
    return root


_MISSING = object()


def _scalar_text(value: Any, original: str) -> str:
    if value is _MISSING or isinstance(value, (dict, list)):
        return original
    return str(value)


def has_interpolation(data: Any) -> bool:
    if isinstance(data, dict):
        return any(has_interpolation(v) for v in data.values())
    if isinstance(data, list):
        return any(has_interpolation(v) for v in data)
    return isinstance(data, str) and "${" in data


def _has_target(data: Any, depth: int = 0) -> bool:
    if depth > 6:
        return False
    if isinstance(data, dict):
        return "_target_" in data or any(_has_target(v, depth + 1) for v in data.values())
    return False


# --------------------------------------------------------------------------- helpers
def _num(value: Any) -> Any:
    """Numbers as numbers; YAML 1.1 reads `1e-3` as a string, so accept numeric strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def _opt_name(target: Any) -> str | None:
    """`torch.optim.AdamW` / `adamw_torch` / `AdamW` -> `adamw`."""
    if not isinstance(target, str) or not target:
        return None
    name = target.rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()
    for known in ("adamw", "adam", "sgd", "adafactor", "lamb", "lion", "rmsprop", "adagrad", "adamax",
                  "nadam", "radam", "adadelta", "lbfgs"):
        if name.startswith(known) or known in name.replace("_", ""):
            return known
    return name


def _precision(value: Any) -> str | None:
    """Lightning / mlaudit precision spellings -> fp32 | fp16-mixed | bf16-mixed | fp16 | bf16 | fp64."""
    if value is None:
        return None
    text = str(value).strip().lower()
    table = {
        "32": "fp32", "32-true": "fp32", "fp32": "fp32", "float32": "fp32", "full": "fp32",
        "16": "fp16-mixed", "16-mixed": "fp16-mixed", "fp16-mixed": "fp16-mixed", "amp": "fp16-mixed",
        "bf16": "bf16-mixed", "bf16-mixed": "bf16-mixed", "16-true": "fp16", "fp16": "fp16",
        "bf16-true": "bf16", "64": "fp64", "64-true": "fp64", "fp64": "fp64", "transformer-engine": "fp8",
    }  # fmt: skip
    return table.get(text, text)


# --------------------------------------------------------------------------- mlaudit schema
MLAUDIT_KEYS = frozenset({
    "model", "input_spec", "optimizer", "lr", "weight_decay", "precision", "grad_clip", "seed",
    "batch_size", "epochs", "max_steps", "dropout", "validation_split", "validation", "checkpoint",
    "device_memory_gb", "deterministic", "artifact_role", "data", "output_dir", "scheduler",
    "warmup_steps", "gradient_accumulation_steps", "label_smoothing", "early_stopping", "notes",
    "data_dir", "logging", "name",
})  # fmt: skip
MLAUDIT_OPTIMIZER_KEYS = frozenset({"name", "lr", "weight_decay", "betas", "eps", "momentum", "nesterov"})
MLAUDIT_CHECKPOINT_KEYS = frozenset({"dir", "every_n_steps", "every_n_epochs", "keep_last", "save_best",
                                     "enabled"})


def map_mlaudit(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        m.put("optimizer", _opt_name(opt.get("name") or opt.get("_target_")), "optimizer.name")
        m.put("lr", _num(opt.get("lr")), "optimizer.lr")
        m.put("weight_decay", _num(opt.get("weight_decay")), "optimizer.weight_decay")
        _unknown(m, opt, MLAUDIT_OPTIMIZER_KEYS, "optimizer.")
    else:
        m.put("optimizer", _opt_name(opt), "optimizer")
    for name in ("lr", "weight_decay", "grad_clip", "seed", "batch_size", "epochs", "max_steps",
                 "dropout", "device_memory_gb"):
        if name not in m.values:
            m.put(name, _num(data.get(name)), name)
    m.put("precision", _precision(data.get("precision")), "precision")
    m.put("deterministic", data.get("deterministic"), "deterministic")
    split = _num(data.get("validation_split"))
    if split is not None:
        m.put("validation", bool(split), "validation_split")
    elif isinstance(data.get("validation"), (bool, Mapping)):
        val = data["validation"]
        m.put("validation", bool(val) if isinstance(val, bool) else val.get("enabled", True) is not False,
              "validation")
    ckpt = data.get("checkpoint")
    if ckpt is not None:
        enabled = ckpt is not False and not (isinstance(ckpt, Mapping) and ckpt.get("enabled") is False)
        m.put("save_checkpoints", enabled, "checkpoint")
        if isinstance(ckpt, Mapping):
            _unknown(m, ckpt, MLAUDIT_CHECKPOINT_KEYS, "checkpoint.")
    _unknown(m, data, MLAUDIT_KEYS, "")
    # Our own schema has no library behind it: a missing key means "not configured".
    m.default("precision", "fp32", "precision")
    return m


# --------------------------------------------------------------------------- Hugging Face
# TrainingArguments defaults (transformers docs, TrainingArguments reference):
# learning_rate=5e-5, weight_decay=0.0, max_grad_norm=1.0, seed=42, num_train_epochs=3.0,
# max_steps=-1, per_device_train_batch_size=8, optim="adamw_torch", eval_strategy="no",
# save_strategy="steps" (save_steps=500), fp16=False, bf16=False, full_determinism=False.
HF_DEFAULTS = {
    "lr": ("learning_rate", 5e-5), "weight_decay": ("weight_decay", 0.0),
    "grad_clip": ("max_grad_norm", 1.0), "seed": ("seed", 42), "epochs": ("num_train_epochs", 3),
    "batch_size": ("per_device_train_batch_size", 8), "optimizer": ("optim", "adamw"),
    "precision": ("fp16", "fp32"), "validation": ("eval_strategy", False),
    "save_checkpoints": ("save_strategy", True), "deterministic": ("full_determinism", False),
}  # fmt: skip
HF_KEYS = frozenset("""
output_dir overwrite_output_dir do_train do_eval do_predict eval_strategy evaluation_strategy
prediction_loss_only per_device_train_batch_size per_device_eval_batch_size per_gpu_train_batch_size
per_gpu_eval_batch_size gradient_accumulation_steps eval_accumulation_steps eval_delay
torch_empty_cache_steps learning_rate weight_decay adam_beta1 adam_beta2 adam_epsilon max_grad_norm
num_train_epochs max_steps lr_scheduler_type lr_scheduler_kwargs warmup_ratio warmup_steps
log_level log_level_replica log_on_each_node logging_dir logging_strategy logging_first_step
logging_steps logging_nan_inf_filter save_strategy save_steps save_total_limit save_safetensors
save_on_each_node save_only_model restore_callback_states_from_checkpoint no_cuda use_cpu
use_mps_device seed data_seed jit_mode_eval use_ipex bf16 fp16 fp16_opt_level half_precision_backend
bf16_full_eval fp16_full_eval tf32 local_rank ddp_backend tpu_num_cores tpu_metrics_debug debug
dataloader_drop_last eval_steps dataloader_num_workers dataloader_prefetch_factor past_index
run_name disable_tqdm remove_unused_columns label_names load_best_model_at_end metric_for_best_model
greater_is_better ignore_data_skip fsdp fsdp_min_num_params fsdp_config
fsdp_transformer_layer_cls_to_wrap accelerator_config deepspeed label_smoothing_factor optim
optim_args adafactor group_by_length length_column_name report_to ddp_find_unused_parameters
ddp_bucket_cap_mb ddp_broadcast_buffers dataloader_pin_memory dataloader_persistent_workers
skip_memory_metrics use_legacy_prediction_loop push_to_hub resume_from_checkpoint hub_model_id
hub_strategy hub_token hub_private_repo hub_always_push gradient_checkpointing
gradient_checkpointing_kwargs include_inputs_for_metrics include_for_metrics eval_do_concat_batches
fp16_backend push_to_hub_model_id push_to_hub_organization push_to_hub_token mp_parameters
auto_find_batch_size full_determinism torchdynamo ray_scope ddp_timeout torch_compile
torch_compile_backend torch_compile_mode include_tokens_per_second include_num_input_tokens_seen
neftune_noise_alpha optim_target_modules batch_eval_metrics eval_on_start use_liger_kernel
eval_use_gather_object average_tokens_across_devices dispatch_batches split_batches
""".split())
# Script arguments that HF example scripts and TRL recipes put in the same YAML file.
HF_SCRIPT_KEYS = frozenset("""
model_name_or_path config_name tokenizer_name cache_dir use_fast_tokenizer model_revision
torch_dtype trust_remote_code use_auth_token token dataset_name dataset_config_name train_file
validation_file test_file max_seq_length max_source_length max_target_length preprocessing_num_workers
overwrite_cache max_train_samples max_eval_samples max_predict_samples pad_to_max_length
validation_split_percentage block_size streaming task_name dataset_mixer dataset_splits
attn_implementation use_peft lora_r lora_alpha lora_dropout lora_target_modules packing
dataset_text_field chat_template beta max_length max_prompt_length low_cpu_mem_usage
dtype dataset_config dataset_train_split dataset_test_split dataset_streaming
gradient_checkpointing_use_reentrant ignore_bias_buffers lora_modules_to_save lora_task_type
use_rslora use_dora load_in_8bit load_in_4bit bnb_4bit_quant_type use_bnb_nested_quant
model_init_kwargs dataset_kwargs dataset_num_proc eos_token pad_token completion_only_loss
assistant_only_loss padding_free pad_to_multiple_of packing_strategy activation_offloading
loss_type label_smoothing reference_free ref_model_init_kwargs precompute_ref_log_probs
max_completion_length rpo_alpha sync_ref_model ref_model_mixup_alpha ref_model_sync_steps
use_weighting num_generations temperature top_p top_k min_p repetition_penalty use_vllm
vllm_mode vllm_gpu_memory_utilization reward_weights epsilon epsilon_high scale_rewards
num_iterations mask_truncated_completions generation_batch_size steps_per_generation
log_completions reward_funcs reward_model_name_or_path missing_eos_penalty kl_coef cliprange
vf_coef gamma lam whiten_rewards num_ppo_epochs desirable_weight undesirable_weight
""".split())  # TRL ScriptArguments/ModelConfig and SFT/DPO/GRPO/PPO/KTO config fields (TRL 0.2x)
HF_MARKERS = frozenset({
    "output_dir", "learning_rate", "per_device_train_batch_size", "num_train_epochs", "eval_strategy",
    "evaluation_strategy", "save_strategy", "max_grad_norm", "warmup_ratio", "logging_steps",
    "lr_scheduler_type", "optim", "save_total_limit", "load_best_model_at_end", "report_to",
    "per_device_eval_batch_size", "gradient_accumulation_steps", "full_determinism",
})  # fmt: skip


def map_huggingface(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    m.put("lr", _num(data.get("learning_rate")), "learning_rate")
    m.put("weight_decay", _num(data.get("weight_decay")), "weight_decay")
    m.put("grad_clip", _num(data.get("max_grad_norm")), "max_grad_norm")
    m.put("seed", _num(data.get("seed")), "seed")
    m.put("epochs", _num(data.get("num_train_epochs")), "num_train_epochs")
    steps = _num(data.get("max_steps"))
    if isinstance(steps, (int, float)) and steps > 0:  # -1 is the library's "unset"
        m.put("max_steps", int(steps), "max_steps")
    m.put("batch_size", _num(data.get("per_device_train_batch_size")), "per_device_train_batch_size")
    m.put("optimizer", _opt_name(data.get("optim")), "optim")
    fp16, bf16 = data.get("fp16"), data.get("bf16")
    m.put("fp16", fp16 if isinstance(fp16, bool) else None, "fp16")
    m.put("bf16", bf16 if isinstance(bf16, bool) else None, "bf16")
    if bf16 is True:
        m.put("precision", "bf16-mixed", "bf16")
    elif fp16 is True:
        m.put("precision", "fp16-mixed", "fp16")
    elif fp16 is False or bf16 is False:
        m.put("precision", "fp32", "fp16" if "fp16" in data else "bf16")
    strategy_key = "eval_strategy" if "eval_strategy" in data else "evaluation_strategy"
    strategy = data.get(strategy_key)
    if strategy is not None:
        m.put("validation", str(strategy).lower() not in {"no", "none", "false"}, strategy_key)
    elif data.get("do_eval") is True:
        m.put("validation", True, "do_eval")
    save = data.get("save_strategy")
    if save is not None:
        m.put("save_checkpoints", str(save).lower() not in {"no", "none", "false"}, "save_strategy")
    m.put("deterministic", data.get("full_determinism"), "full_determinism")
    m.put("dropout", None, "")
    for name, (key, value) in HF_DEFAULTS.items():
        m.default(name, value, key)
    if "model_name_or_path" not in data and ("config_name" in data or "model_type" in data):
        m.values["regime"] = "pretraining"  # run_clm-style: a model built from a config, no weights
    # Script arguments are the project's own dataclasses (alignment-handbook renamed
    # `dataset_mixer` to `dataset_mixture`): a key near one of them may be the project's current
    # name, so only TrainingArguments - a complete schema - can tell a typo.
    _unknown(m, data, HF_KEYS | HF_SCRIPT_KEYS, "", only_close=True, suggest_from=HF_KEYS)
    return m


# --------------------------------------------------------------------------- Lightning
LIGHTNING_TRAINER_KEYS = frozenset("""
accelerator strategy devices num_nodes precision logger callbacks fast_dev_run max_epochs min_epochs
max_steps min_steps max_time limit_train_batches limit_val_batches limit_test_batches
limit_predict_batches overfit_batches val_check_interval check_val_every_n_epoch num_sanity_val_steps
log_every_n_steps enable_checkpointing enable_progress_bar enable_model_summary
accumulate_grad_batches gradient_clip_val gradient_clip_algorithm deterministic benchmark
inference_mode use_distributed_sampler profiler detect_anomaly barebones plugins sync_batchnorm
reload_dataloaders_every_n_epochs default_root_dir model_registry
multiple_trainloader_mode gpus tpu_cores ipus auto_select_gpus auto_lr_find auto_scale_batch_size
resume_from_checkpoint track_grad_norm replace_sampler_ddp move_metrics_to_cpu amp_backend amp_level
weights_save_path flush_logs_every_n_steps progress_bar_refresh_rate checkpoint_callback
stochastic_weight_avg terminate_on_nan prepare_data_per_node process_position num_processes
log_gpu_memory weights_summary enable_checkpointing
""".split())  # Lightning 2.x plus the 1.x arguments (projects pinned to 1.x still use them)
LIGHTNING_CLI_KEYS = frozenset({"seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler",
                                "class_path", "init_args", "dict_kwargs",  # a `--data x.yaml` sub-config
                                "ckpt_path", "fit", "validate", "test", "predict", "config"})


def map_lightning_trainer(m: Mapped, trainer: Mapping[str, Any], prefix: str, library_defaults: bool) -> None:
    """Lightning Trainer arguments (shared by the Lightning and Hydra dialects)."""
    m.put("precision", _precision(trainer.get("precision")), f"{prefix}precision")
    clip = _num(trainer.get("gradient_clip_val"))
    m.put("grad_clip", clip, f"{prefix}gradient_clip_val")
    epochs = _num(trainer.get("max_epochs"))
    if not (isinstance(epochs, (int, float)) and not isinstance(epochs, bool) and epochs < 0):
        # max_epochs: -1 is Lightning's "no epoch limit" (used with max_steps), not a value
        m.put("epochs", epochs, f"{prefix}max_epochs")
    steps = _num(trainer.get("max_steps"))
    if isinstance(steps, (int, float)) and steps > 0:
        m.put("max_steps", int(steps), f"{prefix}max_steps")
    m.put("deterministic", trainer.get("deterministic"), f"{prefix}deterministic")
    if trainer.get("benchmark") is not None:
        m.put("cudnn_benchmark", bool(trainer.get("benchmark")), f"{prefix}benchmark")
    limit = _num(trainer.get("limit_val_batches"))
    if limit is not None and limit == 0:
        m.put("validation", False, f"{prefix}limit_val_batches")
    elif trainer.get("check_val_every_n_epoch") is None and "val_check_interval" not in trainer:
        pass  # Lightning validates whenever the module defines validation_step: unknown here
    else:
        m.put("validation", True, f"{prefix}check_val_every_n_epoch"
              if "check_val_every_n_epoch" in trainer else f"{prefix}val_check_interval")
    if trainer.get("enable_checkpointing") is not None:
        m.put("save_checkpoints", bool(trainer["enable_checkpointing"]), f"{prefix}enable_checkpointing")
    if library_defaults:
        # Trainer defaults (Lightning docs, Trainer API): precision "32-true",
        # gradient_clip_val None (no clipping), enable_checkpointing True, deterministic None.
        m.default("precision", "fp32", f"{prefix}precision")
        m.default("grad_clip", 0.0, f"{prefix}gradient_clip_val")
        m.default("save_checkpoints", True, f"{prefix}enable_checkpointing")
        m.default("deterministic", False, f"{prefix}deterministic")


def _class_path_optimizer(m: Mapped, opt: Any, prefix: str) -> None:
    if isinstance(opt, Mapping):
        target = opt.get("class_path") or opt.get("_target_")
        args = opt.get("init_args") if isinstance(opt.get("init_args"), Mapping) else opt
        key = "class_path" if "class_path" in opt else "_target_"
        m.put("optimizer", _opt_name(target), f"{prefix}{key}")
        ap = f"{prefix}init_args." if args is not opt else prefix
        m.put("lr", _num(args.get("lr")), f"{ap}lr")
        m.put("weight_decay", _num(args.get("weight_decay")), f"{ap}weight_decay")
    elif isinstance(opt, str):
        m.put("optimizer", _opt_name(opt), prefix.rstrip("."))


def map_lightning(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    trainer = data.get("trainer") if isinstance(data.get("trainer"), Mapping) else {}
    map_lightning_trainer(m, trainer, "trainer.", library_defaults=True)
    _unknown(m, trainer, LIGHTNING_TRAINER_KEYS, "trainer.")
    seed = data.get("seed_everything")
    if seed is not None and seed is not True and seed is not False:
        m.put("seed", _num(seed), "seed_everything")
    elif seed is True:
        m.put("seed", -1, "seed_everything")  # a random seed that Lightning logs
    _class_path_optimizer(m, data.get("optimizer"), "optimizer.")
    model = data.get("model")
    if isinstance(model, Mapping):
        args = model.get("init_args") if isinstance(model.get("init_args"), Mapping) else model
        m.put("model_target", model.get("class_path"), "model.class_path")
        if "lr" not in m.values:
            m.put("lr", _num(args.get("lr") or args.get("learning_rate")),
                  "model.init_args.lr" if args is not model else "model.lr")
        if "weight_decay" not in m.values:
            m.put("weight_decay", _num(args.get("weight_decay")), "model.init_args.weight_decay")
        m.put("dropout", _num(args.get("dropout")), "model.init_args.dropout")
    data_section = data.get("data")
    if isinstance(data_section, Mapping):
        args = data_section.get("init_args") if isinstance(data_section.get("init_args"), Mapping) \
            else data_section
        m.put("batch_size", _num(args.get("batch_size")), "data.init_args.batch_size"
              if args is not data_section else "data.batch_size")
    _unknown(m, data, LIGHTNING_CLI_KEYS, "")
    return m


# --------------------------------------------------------------------------- Hydra / OmegaConf
HYDRA_SECTIONS = frozenset({"model", "optimizer", "trainer", "data", "datamodule", "seed", "train",
                            "training"})


def map_hydra(data: Mapping[str, Any]) -> Mapped:
    # A primary config with a `defaults:` list, or a config-group fragment (configs/trainer/
    # default.yaml, configs/model/net.yaml) is only part of what runs: a key it leaves out
    # may come from another file, so only what it writes is judged.
    keys = {str(k) for k in data}
    fragment = len(keys & HYDRA_SECTIONS) < 2
    m = Mapped(partial=isinstance(data.get("defaults"), list) or fragment)
    target = str(data.get("_target_", ""))
    if "trainer" in target.lower():  # a trainer group file: Trainer arguments at the top level
        map_lightning_trainer(m, data, "", library_defaults=False)
        if "lightning" in target.lower():
            _unknown(m, data, LIGHTNING_TRAINER_KEYS, "")
    elif "optim" in target.lower():  # an optimizer group file
        _class_path_optimizer(m, data, "")
    for key in ("optimizer", "optim", "model.optimizer", "module.optimizer"):
        opt = get_path(data, key)
        if isinstance(opt, Mapping) and "_target_" in opt:
            _class_path_optimizer(m, opt, key + ".")
            break
    model = data.get("model")
    if isinstance(model, Mapping):
        m.put("model_target", model.get("_target_"), "model._target_")
        m.put("dropout", _num(model.get("dropout")), "model.dropout")
    trainer = data.get("trainer")
    if isinstance(trainer, Mapping):
        target = str(trainer.get("_target_", ""))
        lightning = "lightning" in target.lower()
        map_lightning_trainer(m, trainer, "trainer.", library_defaults=lightning and not m.partial)
        if lightning:
            _unknown(m, trainer, LIGHTNING_TRAINER_KEYS, "trainer.")
    if get_path(data, "exp_manager.create_checkpoint_callback") is True:
        # NeMo: exp_manager adds the checkpoint callback (trainer.enable_checkpointing is False)
        m.put("save_checkpoints", True, "exp_manager.create_checkpoint_callback")
    for name, paths in {
        "seed": ("seed", "training.seed", "train.seed"),
        "lr": ("lr", "learning_rate", "training.lr", "train.lr"),
        "batch_size": ("batch_size", "data.batch_size", "datamodule.batch_size", "train.batch_size"),
        "epochs": ("epochs", "max_epochs", "train.epochs"),
        "weight_decay": ("weight_decay", "train.weight_decay"),
        "grad_clip": ("grad_clip", "train.grad_clip"),
    }.items():
        if name in m.values or name in m.auto:
            continue
        for p in paths:
            value = get_path(data, p)
            if value is not None and not isinstance(value, (Mapping, list)):
                m.put(name, _num(value), p)
                break
    return m


# --------------------------------------------------------------------------- DeepSpeed
DEEPSPEED_KEYS = frozenset("""
train_batch_size train_micro_batch_size_per_gpu gradient_accumulation_steps optimizer scheduler fp16 bf16
amp gradient_clipping zero_optimization steps_per_print wall_clock_breakdown dump_state
zero_allow_untested_optimizer zero_force_ds_cpu_optimizer activation_checkpointing flops_profiler
tensorboard wandb csv_monitor comet comms_logger data_types communication_data_type prescale_gradients
gradient_predivide_factor sparse_gradients aio elasticity pipeline checkpoint data_efficiency
compression_training autotuning sparse_attention memory_breakdown curriculum_learning
torch_autocast nebula weight_quantization compile seq_parallel_communication_data_type
""".split())


def map_deepspeed(data: Mapping[str, Any]) -> Mapped:
    m = Mapped()
    # DeepSpeed configures the engine only: seed, validation and saving live in the script.
    m.auto.update({"seed", "validation", "save_checkpoints"})
    m.put("batch_size", _num(data.get("train_micro_batch_size_per_gpu")), "train_micro_batch_size_per_gpu")
    m.put("grad_clip", _num(data.get("gradient_clipping")), "gradient_clipping")
    opt = data.get("optimizer")
    if isinstance(opt, Mapping):
        m.put("optimizer", _opt_name(opt.get("type")), "optimizer.type")
        params = opt.get("params") if isinstance(opt.get("params"), Mapping) else {}
        m.put("lr", _num(params.get("lr")), "optimizer.params.lr")
        m.put("weight_decay", _num(params.get("weight_decay")), "optimizer.params.weight_decay")
    else:
        m.auto.update({"optimizer", "lr", "weight_decay"})  # the script builds the optimizer
    flags = {}
    for name in ("fp16", "bf16"):
        section = data.get(name)
        if isinstance(section, Mapping) and "enabled" in section:
            enabled = section["enabled"]
            m.put(name, enabled if isinstance(enabled, bool) else str(enabled), f"{name}.enabled")
            flags[name] = enabled
    if any(str(v).lower() == "auto" for v in flags.values()):
        m.auto.add("precision")
    elif flags.get("bf16") is True:
        m.put("precision", "bf16-mixed", "bf16.enabled")
    elif flags.get("fp16") is True:
        m.put("precision", "fp16-mixed", "fp16.enabled")
    elif flags:
        m.put("precision", "fp32", next(f"{k}.enabled" for k in flags))
    # DeepSpeed runtime/constants.py: GRADIENT_CLIPPING_DEFAULT = 0.0 (no clipping; the config
    # docs' table says 1.0, the code decides). The HF Trainer and accelerate fill it only where
    # the JSON says "auto". fp16/bf16 default disabled.
    m.default("grad_clip", 0.0, "gradient_clipping")
    m.default("precision", "fp32", "bf16.enabled")
    _unknown(m, data, DEEPSPEED_KEYS, "")
    return m


MAPPERS = {
    "mlaudit": map_mlaudit, "huggingface": map_huggingface, "lightning": map_lightning,
    "hydra": map_hydra, "deepspeed": map_deepspeed,
}  # fmt: skip


def detect_dialect(data: Mapping[str, Any], text: str = "") -> str | None:
    """The dialect of a mapping, or None when it is not a training config at all."""
    override = DIALECT_COMMENT.search(text[:4096]) if text else None
    if override and override.group(1) in MAPPERS:
        return override.group(1)
    keys = {str(k) for k in data}
    if isinstance(data.get("defaults"), list):
        return "hydra"  # a Hydra primary config composing config groups
    if "zero_optimization" in keys or "train_micro_batch_size_per_gpu" in keys or (
        "train_batch_size" in keys and ({"fp16", "bf16", "optimizer", "gradient_clipping"} & keys)
        and isinstance(data.get("optimizer", {}), Mapping) and "_target_" not in data.get("optimizer", {})
    ):
        return "deepspeed"
    if len(keys & HF_MARKERS) >= 2 and "trainer" not in keys:
        return "huggingface"
    trainer = data.get("trainer")
    if "seed_everything" in keys or (isinstance(trainer, Mapping) and "_target_" not in trainer
                                     and set(map(str, trainer)) & LIGHTNING_TRAINER_KEYS):
        return "lightning"
    model = data.get("model")
    mlaudit_signal = {"lr", "optimizer", "precision", "grad_clip", "epochs", "max_steps", "batch_size",
                      "seed", "validation_split", "checkpoint", "device_memory_gb", "input_spec"} & keys
    opt = data.get("optimizer")
    plain_opt = opt is None or isinstance(opt, str) or (isinstance(opt, Mapping) and "_target_" not in opt)
    # A top-level `_target_` makes the file a Hydra instantiate target (a config-group file such
    # as configs/optimizer/adamw.yaml: `_target_: torch.optim.AdamW`, lr, weight_decay), never
    # mlaudit's schema, which keeps `_target_` under `model:`.
    if mlaudit_signal and plain_opt and "defaults" not in keys and "_target_" not in keys and (
        len(keys & MLAUDIT_KEYS) >= max(2, len(keys) // 2)
        or (isinstance(model, Mapping) and "_target_" in model and len(mlaudit_signal) >= 2)
    ):
        return "mlaudit"
    if isinstance(data.get("defaults"), list) or _has_target(data) or (
        has_interpolation(data) and ({"trainer", "model", "optimizer", "data"} & keys)
    ):
        return "hydra"
    return None
