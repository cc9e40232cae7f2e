"""Which kind of file a YAML/JSON config is, with the evidence that decided it.

A verdict is never a guess: each dialect is recognized by keys (or comments) that only that
library's files carry, and `why` says which ones. Files that are no training config at all
(launch manifests, CI, docs sites, dataset descriptions, trackers) get `kind="other"` and are
skipped; launchers (`accelerate`) and data descriptions are recognized so that only the rules
that make sense for them run.

Public API:
- `Verdict(dialect, kind, why)`: kind is "training", "launcher", "data" or "other".
- `decide(data, text) -> Verdict`: from the file's own content.
- `unparsable_other(text, rel) -> str | None`: why a file that does not parse as plain YAML/JSON
  is still recognizably not a training config (Kubernetes multi-document, Helm template,
  CloudFormation/mkdocs tags, JSON with comments); None when it may be a broken config.
- `context_verdict(path, data) -> Verdict | None`: a file with no evidence of its own that is a
  Hydra config-group member or an overlay of a base config beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.dialects import LIGHTNING_TRAINER_KEYS, MLAUDIT_KEYS
from mlaudit.inputs.yaml_lines import read_config_file

TRAINING, LAUNCHER, DATA, OTHER = "training", "launcher", "data", "other"


@dataclass(frozen=True)
class Verdict:
    """The dialect of a config file and the evidence for it."""

    dialect: str | None  # None only for kind "other"
    kind: str  # training | launcher | data | other
    why: str

    @property
    def trains(self) -> bool:
        return self.kind == TRAINING


def _keys(data: Mapping[str, Any]) -> set[str]:
    return {str(k) for k in data}


def _norm(keys: set[str]) -> set[str]:
    """GPT-NeoX (and argparse-style files) accept `a-b` and `a_b` for the same key."""
    return {k.replace("-", "_") for k in keys}


def iter_keys(data: Any, depth: int = 0) -> Iterator[str]:
    """Every mapping key in the document (bounded depth)."""
    if depth > 12:
        return
    if isinstance(data, Mapping):
        for k, v in data.items():
            yield str(k)
            yield from iter_keys(v, depth + 1)
    elif isinstance(data, list):
        for v in data:
            yield from iter_keys(v, depth + 1)


def _has_key(data: Any, key: str) -> bool:
    return any(k == key for k in iter_keys(data))


def _listing(found: set[str] | list[str], n: int = 3) -> str:
    items = sorted(found)[:n]
    return ", ".join(f"`{k}`" for k in items)


# Top-level keys of well-known files that are not training configs.
OTHER_SCHEMAS: tuple[tuple[frozenset[str], int, str], ...] = (
    (frozenset({"apiVersion", "kind", "metadata", "spec"}), 2, "a Kubernetes manifest"),
    (frozenset({"AWSTemplateFormatVersion", "Resources"}), 1, "a CloudFormation template"),
    (frozenset({"site_name", "markdown_extensions"}), 1, "an mkdocs site config"),
    (frozenset({"jobs", "on", "True", "runs-on", "steps"}), 2, "a CI workflow"),  # YAML 1.1: on -> True
    (frozenset({"services", "volumes", "networks", "version"}), 2, "a docker-compose file"),
    (frozenset({"repos", "default_language_version", "default_stages"}), 1, "a pre-commit config"),
    (frozenset({"channels", "dependencies", "name", "prefix"}), 2, "a conda environment"),
    (frozenset({"compilerOptions", "include", "exclude", "extends"}), 1, "a TypeScript config"),
    (frozenset({"cff-version"}), 1, "a CITATION.cff"),
    (frozenset({"tracker_type", "track_high_thresh", "track_buffer", "match_thresh"}), 2,
     "an Ultralytics tracker config (inference)"),
    (frozenset({"dataset_info", "configs", "license", "task_categories"}), 2, "a dataset card"),
    (frozenset({"coverage", "codecov", "comment", "flags"}), 2, "a codecov config"),
    (frozenset({"updates", "version"}), 2, "a dependabot config"),
    (frozenset({"build", "sphinx", "formats", "python"}), 2, "a Read the Docs config"),
)
ACCELERATE_KEYS = frozenset({"compute_environment", "distributed_type", "num_processes", "machine_rank",
                             "main_training_function", "deepspeed_config", "fsdp_config", "rdzv_backend",
                             "num_machines", "downcast_bf16", "use_cpu", "mixed_precision", "same_network",
                             "main_process_ip", "main_process_port", "gpu_ids", "tpu_env"})
DEEPSPEED_MARKERS = frozenset({"zero_optimization", "train_micro_batch_size_per_gpu", "train_batch_size",
                               "gradient_clipping", "zero_allow_untested_optimizer", "steps_per_print",
                               "wall_clock_breakdown", "autotuning", "fp16", "bf16", "optimizer",
                               "scheduler", "gradient_accumulation_steps", "prescale_gradients"})
NEOX_MARKERS = frozenset({"pipe_parallel_size", "model_parallel_size", "train_iters", "lr_decay_iters",
                          "lr_decay_style", "tokenizer_type", "data_impl", "checkpoint_factor",
                          "checkpoint_validation_with_forward_pass", "pos_emb", "hostfile", "train_impl",
                          "gpt_j_residual", "no_weight_tying", "output_layer_parallelism",
                          "scaled_upper_triang_masked_softmax_fusion", "bias_gelu_fusion",
                          "checkpoint_activations", "partition_activations", "synchronize_each_layer"})
FOUNDRY_MARKERS = frozenset({"train_loader", "eval_loader", "max_duration", "global_train_batch_size",
                             "device_train_microbatch_size", "device_eval_batch_size", "eval_interval",
                             "icl_tasks", "fsdp_config", "algorithms", "callbacks", "variables",
                             "save_folder", "console_log_interval"})
ULTRALYTICS_MARKERS = frozenset({"lr0", "lrf", "imgsz", "mosaic", "close_mosaic", "warmup_bias_lr",
                                 "hsv_h", "fliplr", "box", "cls", "dfl", "nbs", "copy_paste", "mixup"})
LLAMAFACTORY_MARKERS = frozenset({"stage", "finetuning_type", "template", "cutoff_len", "lora_target",
                                  "pref_beta", "pref_loss", "plot_loss", "max_samples"})
LLAMAFACTORY_V1_MARKERS = frozenset({"model_class", "peft_config", "kernel_config", "dist_config",
                                     "micro_batch_size", "train_dataset", "sample_backend"})
TIMM_MARKERS = frozenset({"opt", "opt_eps", "opt_betas", "sched", "clip_grad", "clip_mode", "smoothing",
                          "reprob", "remode", "recount", "mixup", "cutmix", "drop_path", "model_ema", "aa",
                          "warmup_lr",
                          "cooldown_epochs", "bn_momentum", "train_interpolation", "checkpoint_hist",
                          "eval_metric", "lr_noise", "mixup_prob", "amp_dtype", "layer_decay"})
FAIRSEQ_GROUPS = frozenset({"common", "common_eval", "distributed_training", "dataset", "optimization",
                            "checkpoint", "bmuf", "generation", "eval_lm", "task", "criterion",
                            "lr_scheduler", "bpe", "scoring", "ema"})
AXOLOTL_MARKERS = frozenset({"adapter", "lora_r", "micro_batch_size", "sequence_len", "val_set_size",
                             "num_epochs", "sample_packing", "datasets", "load_in_8bit", "load_in_4bit",
                             "special_tokens", "train_on_inputs", "flash_attention", "evals_per_epoch",
                             "saves_per_epoch", "dataset_prepared_path", "pad_to_sequence_len", "rl"})
LITGPT_TRAIN_KEYS = frozenset({"global_batch_size", "micro_batch_size", "max_norm", "lr_warmup_steps",
                               "save_interval", "log_interval", "max_tokens", "max_seq_length", "min_lr",
                               "epochs", "tie_embeddings", "lr_warmup_fraction"})
YACS_SECTIONS = frozenset({"SOLVER", "TRAIN", "TEST", "MODEL", "DATA", "INPUT", "DATASETS", "DATALOADER",
                           "DATA_LOADER", "OUTPUT_DIR", "_BASE_", "RNG_SEED", "NUM_GPUS", "SEED"})
HF_MARKERS = frozenset({
    "output_dir", "learning_rate", "per_device_train_batch_size", "num_train_epochs", "eval_strategy",
    "evaluation_strategy", "save_strategy", "max_grad_norm", "warmup_ratio", "logging_steps",
    "lr_scheduler_type", "optim", "save_total_limit", "load_best_model_at_end", "report_to",
    "per_device_eval_batch_size", "gradient_accumulation_steps", "full_determinism",
    "model_name_or_path", "dataset_name",
})  # fmt: skip
HF_SCRIPT_MARKERS = frozenset({"model_name_or_path", "dataset_name"})
LIGHTNING_TRAINER_HINTS = frozenset({"max_epochs", "max_steps", "accelerator", "devices", "precision",
                                     "gradient_clip_val", "check_val_every_n_epoch", "callbacks", "logger",
                                     "limit_val_batches", "val_check_interval", "accumulate_grad_batches"})
TRAINING_WORDS = re.compile(r"(^|_)(lr|learning_rate|base_lr|epochs?|max_epochs|batch_size\w*|optim\w*|"
                            r"weight_decay|warmup\w*|max_steps|grad\w*clip\w*|clip_grad\w*|max_norm|"
                            r"clip_norm)$", re.I)


def decide(data: Any, text: str = "") -> Verdict:
    """The verdict for a parsed document from its own content."""
    if not isinstance(data, Mapping):
        names = {list: "a list", str: "a plain string", type(None): "empty"}
        kind = names.get(type(data), type(data).__name__)
        return Verdict(None, OTHER, f"top level is {kind}, not a mapping of settings")
    keys = _keys(data)
    for schema, need, name in OTHER_SCHEMAS:
        hit = keys & schema
        if len(hit) >= need:
            return Verdict(None, OTHER, f"{name} ({_listing(hit)})")
    hit = keys & ACCELERATE_KEYS
    if {"distributed_type", "compute_environment"} & keys and len(hit) >= 2:
        return Verdict("accelerate", LAUNCHER, f"accelerate launcher keys ({_listing(hit)})")
    norm = _norm(keys)
    hit = norm & NEOX_MARKERS
    if len(hit) >= 3 or ({"vocab_file", "merge_file"} <= norm and {"save", "load"} & norm):
        return Verdict("gpt-neox", TRAINING, f"GPT-NeoX arguments ({_listing(hit or {'vocab_file'})})")
    hit = keys & DEEPSPEED_MARKERS
    ds_specific = keys & {"zero_optimization", "train_micro_batch_size_per_gpu", "steps_per_print",
                          "zero_allow_untested_optimizer", "wall_clock_breakdown", "autotuning",
                          "gradient_clipping"}
    opt = data.get("optimizer")
    if "train_batch_size" in keys and keys & {"fp16", "bf16", "optimizer", "gradient_clipping"} and (
            not isinstance(opt, Mapping) or "type" in opt):
        ds_specific = ds_specific | {"train_batch_size"}
    foreign = (HF_MARKERS - DEEPSPEED_MARKERS) | FOUNDRY_MARKERS | {"trainer", "model"}
    if ds_specific and len(hit) >= 2 and not keys & foreign:
        return Verdict("deepspeed", TRAINING, f"DeepSpeed engine keys ({_listing(ds_specific)})")
    if _has_key(data, "_component_"):
        return Verdict("torchtune", TRAINING, "`_component_` targets (torchtune config)")
    hit = keys & FOUNDRY_MARKERS
    if len(hit) >= 3 and ("train_loader" in keys or "variables" in keys):
        return Verdict("llm-foundry", TRAINING, f"llm-foundry/Composer keys ({_listing(hit)})")
    hit = keys & ULTRALYTICS_MARKERS
    if len(hit) >= 3:
        return Verdict("ultralytics", TRAINING, f"Ultralytics hyperparameters ({_listing(hit)})")
    if "names" in keys and ({"train", "val"} <= keys or ("path" in keys and "train" in keys)):
        return Verdict("ultralytics-data", DATA, "Ultralytics dataset description (`names`, `train`, `val`)")
    upper = {k for k in keys if k.isupper() or k == "_BASE_"}
    if keys & YACS_SECTIONS and len(upper) >= max(2, int(0.7 * len(keys))):
        return Verdict("yacs", TRAINING,
                       f"upper-case YACS/fvcore sections ({_listing(keys & YACS_SECTIONS)})")
    hit = keys & TIMM_MARKERS
    if len(hit) >= 4:
        return Verdict("timm", TRAINING, f"timm train.py arguments ({_listing(hit)})")
    hit = keys & FAIRSEQ_GROUPS
    if len(hit) >= 3 and ({"optimization", "common"} & hit):
        return Verdict("fairseq", TRAINING, f"fairseq config groups ({_listing(hit)})")
    hit = keys & AXOLOTL_MARKERS
    if "base_model" in keys and len(hit) >= 2:
        return Verdict("axolotl", TRAINING, f"axolotl keys (`base_model`, {_listing(hit, 2)})")
    train = data.get("train")
    hit = _keys(train) & LITGPT_TRAIN_KEYS if isinstance(train, Mapping) else set()
    if len(hit) >= 2 and keys & {"model_name", "checkpoint_dir", "out_dir", "initial_checkpoint_dir"}:
        return Verdict("litgpt", TRAINING, f"LitGPT `train:` arguments ({_listing(hit)})")
    hit = keys & LLAMAFACTORY_MARKERS
    if len(hit) >= 2 and ("model_name_or_path" in keys or "stage" in keys):
        return Verdict("llamafactory", TRAINING, f"LLaMA-Factory arguments ({_listing(hit)})")
    hit = keys & LLAMAFACTORY_V1_MARKERS
    if len(hit) >= 2 and "model" in keys:
        return Verdict("llamafactory", TRAINING, f"LLaMA-Factory v1 keys ({_listing(hit)})")
    if isinstance(data.get("defaults"), list):
        return Verdict("hydra", TRAINING, "a Hydra `defaults:` list")
    if text and re.search(r"^#\s*@package\b", text[:2048], re.M):
        return Verdict("hydra", TRAINING, "a Hydra `# @package` header")
    hit = keys & HF_MARKERS
    if len(hit) >= 2 and "trainer" not in keys:
        if not hit - HF_SCRIPT_MARKERS:
            # model/dataset script arguments and no TrainingArguments at all: the settings of a
            # generation or data-filtering script sharing the recipe format (open-r1
            # dataset_filtering); its literal values are still judged, training rules are not.
            return Verdict("huggingface", DATA,
                           f"model/dataset script arguments only ({_listing(hit)}), no TrainingArguments")
        return Verdict("huggingface", TRAINING, f"TrainingArguments keys ({_listing(hit)})")
    if _has_key(data, "class_path") or "seed_everything" in keys:
        why = "`seed_everything`" if "seed_everything" in keys else "`class_path`/`init_args` (LightningCLI)"
        return Verdict("lightning", TRAINING, why)
    own = _mlaudit_schema(data, keys)
    if own:
        return Verdict("mlaudit", TRAINING, f"mlaudit's own schema ({_listing(own)})")
    if _has_key(data, "_target_"):
        return Verdict("hydra", TRAINING, "`_target_` instantiation keys (Hydra)")
    if _has_key(data, "target") and _has_key(data, "params"):
        return Verdict("omegaconf", TRAINING, "`target`/`params` instantiation blocks (OmegaConf)")
    trainer = data.get("trainer")
    if isinstance(trainer, Mapping) and "_target_" not in trainer:
        hit = _keys(trainer) & (LIGHTNING_TRAINER_KEYS | LIGHTNING_TRAINER_HINTS)
        if hit:
            return Verdict("lightning", TRAINING,
                           f"Lightning Trainer arguments under `trainer:` ({_listing(hit)})")
    words = {k for k in iter_keys(data) if TRAINING_WORDS.search(k)}
    if len(words) >= 2 and len(keys) >= 2:
        return Verdict("omegaconf", TRAINING,
                       f"training settings in a project-defined schema ({_listing(words)})")
    return Verdict(None, OTHER, "no training-config keys")


MLAUDIT_SIGNALS = frozenset({"lr", "optimizer", "precision", "grad_clip", "epochs", "max_steps", "batch_size",
                             "seed", "validation_split", "checkpoint", "device_memory_gb", "input_spec"})


def _mlaudit_schema(data: Mapping[str, Any], keys: set[str]) -> set[str]:
    """Keys of mlaudit's own schema (README "Training config schema") when the file uses it:
    flat `lr`/`optimizer`/`precision`... keys, no Hydra `_target_` at the top or `defaults`."""
    signal = MLAUDIT_SIGNALS & keys
    opt = data.get("optimizer")
    plain_opt = opt is None or isinstance(opt, str) or (isinstance(opt, Mapping) and "_target_" not in opt)
    model = data.get("model")
    if signal and plain_opt and "defaults" not in keys and "_target_" not in keys and (
        len(keys & MLAUDIT_KEYS) >= max(2, len(keys) // 2)
        or (isinstance(model, Mapping) and "_target_" in model and len(signal) >= 2)
    ):
        return set(signal)
    return set()


# --------------------------------------------------------------------------- unparsable files
_HELM = re.compile(r"\{\{-?\s*[.$A-Za-z(]")
_CFN_TAGS = re.compile(r"!(Ref|GetAtt|Sub|Join|If|Equals|FindInMap|Select|Split|ImportValue|Base64|GetAZs)\b")
_PY_TAG = re.compile(r"!!python/")
_MULTIDOC = re.compile(r"^---\s*$", re.M)


def unparsable_other(text: str, rel: str) -> str | None:
    """Why a file that failed to parse is still clearly not a training config, or None."""
    head = text[:65536]
    if _HELM.search(head):
        return "a Helm/Go template (`{{ ... }}`)"
    if _CFN_TAGS.search(head):
        return "a CloudFormation template (`!Ref`-style tags)"
    if _PY_TAG.search(head) and ("site_name" in head or "markdown_extensions" in head):
        return "an mkdocs site config (`!!python/name` tags)"
    if len(_MULTIDOC.findall(head)) >= 1 and re.search(r"^\s*(apiVersion|kind):", head, re.M):
        return "a multi-document Kubernetes manifest"
    if rel.endswith((".json", ".jsonc")) and re.search(r"^\s*//|/\*", head, re.M):
        return "JSON with comments (JSONC, e.g. tsconfig/VS Code settings)"
    return None


def multi_document_other(text: str) -> str | None:
    """A YAML stream with several documents is never one training config; say what it is."""
    if len(_MULTIDOC.findall(text[:65536])) >= 1 and re.search(r"^\s*(apiVersion|kind):", text, re.M):
        return "a multi-document Kubernetes manifest"
    return None


# --------------------------------------------------------------------------- context
def _yaml_keys_of(path: Path) -> Any:
    try:
        return read_config_file(path, path.name, max_bytes=256 * 1024).data
    except (InputError, OSError):
        return None


def _leaf_paths(data: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(data, Mapping):
        for k, v in data.items():
            sub = f"{prefix}.{k}" if prefix else str(k)
            out |= _leaf_paths(v, sub) if isinstance(v, Mapping) and v else {sub}
    return out


def _defaults_mentions(defaults: Any, group: str, stem: str) -> bool:
    for item in defaults if isinstance(defaults, list) else ():
        entries = item.items() if isinstance(item, Mapping) else [(str(item), None)]
        for key, value in entries:
            key = str(key).replace("optional ", "").strip()
            head = key.split("@", 1)[0].strip()
            if head.lstrip("./") == group or str(value) == stem or head.lstrip("./") == stem:
                return True
    return False


def context_verdict(path: Path, data: Any, max_files: int = 40) -> Verdict | None:
    """A file with no evidence of its own, judged by the configs around it: a member of a Hydra
    config group named in a `defaults:` list above it, or an overlay whose every key is a key
    of a base config in an enclosing folder (dinov2-style `train/*.yaml` over a default)."""
    if not isinstance(data, Mapping) or not data:
        return None
    group, stem = path.parent.name, path.stem
    mine = _leaf_paths(data)
    seen = 0
    for folder in (path.parent, path.parent.parent, path.parent.parent.parent):
        try:
            candidates = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p != path)
        except OSError:
            continue
        for other in candidates:
            seen += 1
            if seen > max_files:
                return None
            doc = _yaml_keys_of(other)
            if not isinstance(doc, Mapping):
                continue
            rel = other.name if folder == path.parent else f"{other.parent.name}/{other.name}"
            if _defaults_mentions(doc.get("defaults"), group, stem):
                return Verdict("hydra", TRAINING, f"config group member named in the defaults list of {rel}")
            base = _leaf_paths(doc)
            if len(mine) >= 2 and mine <= base and decide(doc).trains:
                verdict = decide(doc)
                return Verdict(verdict.dialect, TRAINING, f"overlay of {rel} (every key is one of its keys)")
    return None
