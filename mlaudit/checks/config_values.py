"""MLT014-MLT021, MLR004-MLR006: facts written in a config's values, whatever its dialect.

These read what a file says literally (a `???`, a placeholder path, an unpinned hub revision,
a test split reused for validation), so they also run on launchers, data descriptions and
config fragments, where the dialect-specific rules (MLT001-MLT009) stay silent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mlaudit.checks.config_hygiene import key_loc, walk_values
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.dialects import get_path, has_path
from mlaudit.inputs.training_config import TrainingConfig
from mlaudit.model import Finding, Location

# ----------------------------------------------------------------------------- MLT014
_PLACEHOLDER = re.compile(
    r"^(\?\?\?"                                   # OmegaConf MISSING
    r"|<[^<>\s][^<>]*>"                           # <YOUR_CHECKPOINT_DIR>
    r"|/?path/to(/.*)?|.*/path/to/.*"             # /path/to/checkpoint
    r"|path_to_\S+"                               # path_to_last_stage1.ckpt
    r"|(YOUR|your)[_-]\S+"                        # YOUR_BUCKET
    r"|([A-Z0-9]+[_-])+(PATH|DIR|CKPT|CHECKPOINT|FILE|ROOT)([_-][A-Z0-9]+)*"  # DATA_PATH, CKPT_PATH
    r"|(PATH|DIR|CKPT|CHECKPOINT|FILE|ROOT)[_-][A-Z0-9]+([_-][A-Z0-9]+)*"  # PATH_TO_DATA
    r")$"
)


# Tokenizer special tokens look like `<...>` placeholders but are literal values: `<|im_end|>`,
# `<|endoftext|>`, `<s>`, `</s>`, `<pad>` (axolotl `special_tokens`, TRL `eos_token`, ...).
_SPECIAL_TOKEN = re.compile(r"^(<\|[^<>|]*\|>|</?(s|pad|unk|mask|eos|bos|sep|cls|eot|eod)>)$", re.I)


def _placeholder(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip()
    return bool(_PLACEHOLDER.match(text)) and not _SPECIAL_TOKEN.match(text)


@rule("MLT014", needs="training_config")
def required_value_missing(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for path, value in walk_values(dict(cfg.raw)):
        if not _placeholder(value):
            continue
        what = "`???` (required, no value)" if value.strip() == "???" else f"the placeholder {value!r}"
        yield ctx.finding(
            f"`{path}` is {what}: the run cannot start from this file until it is filled in",
            key_loc(cfg, path),
            evidence={"value": value},
            key=path,
        )


# ----------------------------------------------------------------------------- MLT015
_REF = re.compile(r"\$\{([^${}]+)\}")
OMEGACONF_DIALECTS = frozenset({"hydra", "llm-foundry", "torchtune", "omegaconf", "mlaudit"})


@rule("MLT015", needs="training_config")
def unresolved_reference(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    # A fragment's references may point into the file it is composed with: judged there.
    if cfg.partial or cfg.dialect not in OMEGACONF_DIALECTS:
        return
    for path, value in walk_values(dict(cfg.raw)):
        if not isinstance(value, str) or path.split(".", 1)[0] in {"defaults", "hydra"}:
            continue
        for ref in _REF.findall(value):
            ref = ref.strip()
            if ":" in ref or ref.startswith(".") or has_path(cfg.raw, ref):
                continue  # a resolver (oc.env:X, multiply:...), a relative reference, or a key
                # that exists with an empty value (filled at launch)
            yield ctx.finding(
                f"`{path}` refers to `${{{ref}}}`, which this config does not define; "
                "resolving it fails (or silently keeps the text)",
                key_loc(cfg, path),
                evidence={"reference": ref},
                key=f"{path}:{ref}",
            )


# ----------------------------------------------------------------------------- MLT016
_PROFILING_NAMES = frozenset({"debug", "profile", "profiler", "profiling", "benchmark"})


def _profiling_config(rel: str) -> bool:
    """A config whose folder or name says profiling/debugging is its purpose (Hydra
    `debug/profiler.yaml`, chosen only on demand): a profiler there is not left on."""
    words = {w for part in rel.lower().split("/") for w in re.findall(r"[a-z]+", part)}
    return bool(words & _PROFILING_NAMES)


@rule("MLT016", needs="training_config")
def profiler_left_on(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if getattr(cfg, "kind", "training") != "training" or _profiling_config(cfg.rel):
        return
    for path, value in walk_values(dict(cfg.raw)):
        parts = path.split(".")
        on = (len(parts) >= 2 and parts[-1] == "enabled" and "profil" in parts[-2] and value is True)
        on = on or (path == "trainer.profiler" and isinstance(value, str)
                    and value.lower() not in {"", "none"})
        if on:
            yield ctx.finding(
                f"the profiler is switched on (`{path}`) in a training config: every run pays its "
                "overhead and writes traces",
                key_loc(cfg, path),
                evidence={"key": path},
            )


# ----------------------------------------------------------------------------- MLT017
_TEST = re.compile(r"(^|[^a-z])test($|[^a-z])", re.I)
def _is_data_value(value: Any) -> bool:
    """Paths or split names (strings, or lists of them), not ratios or sizes."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


_DATA_WORD = re.compile(r"data|path|file|split|dir|set|manifest|shard", re.I)
# `dataset_splits` (old alignment-handbook) is not here: its splits are routed by name, a
# `test_*` split becomes the eval set there, not training data.
TRAIN_SPLIT_KEYS = ("train_loader.dataset.split", "dataset.split", "train_split", "dataset_train_split",
                    "data.train_split")
# Lists whose every member is training data, each member naming its own `split`
# (alignment-handbook `dataset_mixture.datasets`, axolotl `datasets`; axolotl's eval data is
# `test_datasets`, the handbook's eval set is carved out of the mixture by `test_split_size`).
TRAIN_MIXTURE_KEYS = {"dataset_mixture.datasets": None, "datasets": "axolotl"}


def _mappings(data: Any, prefix: str = "") -> Iterable[tuple[str, Mapping[str, Any]]]:
    if isinstance(data, Mapping):
        yield prefix, data
        for k, v in data.items():
            yield from _mappings(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _mappings(v, f"{prefix}.{i}" if prefix else str(i))


@rule("MLT017", needs="training_config")
def eval_data_leak(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for prefix, mapping in _mappings(dict(cfg.raw)):
        same = []
        for key, value in mapping.items():
            k = str(key)
            if "test" in k and _is_data_value(value) and _DATA_WORD.search(k):
                for val_name in ("valid", "val", "validation"):
                    twin = k.replace("test", val_name)
                    if twin != k and twin in mapping and mapping[twin] == value:
                        same.append((k, twin))
                        break
            if ("val" in k.lower()) and isinstance(value, str) and value.lower() == "same_as_test":
                path = f"{prefix}.{k}" if prefix else k
                yield ctx.finding(
                    f"`{path}: same_as_test`: the validation set is the test set, so model "
                    "selection and thresholds are tuned on the data the results are reported on",
                    key_loc(cfg, path), evidence={"mode": value}, key=path)
        if same:
            k, twin = same[0]
            path = f"{prefix}.{k}" if prefix else k
            others = f" (and {len(same) - 1} more such keys)" if len(same) > 1 else ""
            yield ctx.finding(
                f"`{path}` is the same data as `{twin}`{others}: the test numbers are not "
                "independent of what was watched during training",
                key_loc(cfg, path), evidence={"pairs": len(same)}, key=path)
    yield from _validates_on_training_data(cfg, ctx)
    for key in TRAIN_SPLIT_KEYS:
        value = get_path(cfg.raw, key)
        values = value if isinstance(value, list) else [value]
        if key == "dataset.split" and not isinstance(get_path(cfg.raw, "dataset"), Mapping):
            continue
        hits = [v for v in values if isinstance(v, str) and _TEST.search(v)]
        if hits:
            yield _trains_on_test(cfg, ctx, key, hits[0])
    for key, dialect in TRAIN_MIXTURE_KEYS.items():
        members = get_path(cfg.raw, key)
        if (dialect and cfg.dialect != dialect) or not isinstance(members, list):
            continue
        for i, member in enumerate(members):
            split = member.get("split") if isinstance(member, Mapping) else None
            if isinstance(split, str) and _TEST.search(split):
                yield _trains_on_test(cfg, ctx, f"{key}.{i}.split", split)


def _validates_on_training_data(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    # Ultralytics/YOLOv5 dataset files: `val` naming the very images of `train` (coco128 does,
    # as a smoke test) makes every validation metric a measure of memorisation.
    if cfg.dialect != "ultralytics-data":
        return
    train, val = cfg.raw.get("train"), cfg.raw.get("val")
    if _is_data_value(train) and train == val:
        yield ctx.finding(
            f"`val` is the same data as `train` ({val!r}): validation metrics, best-checkpoint "
            "choice and early stopping all measure memorisation of the training images",
            key_loc(cfg, "val"), evidence={"train": train}, key="val")


def _trains_on_test(cfg: TrainingConfig, ctx: RuleContext, key: str, split: str) -> Finding:
    return ctx.finding(
        f"the training data uses a test split (`{key}` = {split!r}): the model is "
        "trained on the data meant to measure it",
        key_loc(cfg, key), evidence={"split": split}, key=key)


# ----------------------------------------------------------------------------- MLT018
def _unquoted_none(cfg: TrainingConfig, path: str) -> bool:
    line = cfg.key_lines.get(path)
    text = getattr(cfg, "text", "") or ""
    if not line or not text:
        return False
    lines = text.splitlines()
    if line > len(lines):
        return False
    after = lines[line - 1].split(":", 1)[-1].split("#", 1)[0].strip()
    return after == "None"


@rule("MLT018", needs="training_config")
def yaml_none_string(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    # YACS/fvcore run literal_eval on string values, so `None` there does become None.
    if cfg.path.suffix.lower() == ".json" or cfg.dialect == "yacs":
        return
    for path, value in walk_values(dict(cfg.raw)):
        if value == "None" and _unquoted_none(cfg, path):
            yield ctx.finding(
                f"`{path}: None` is the string 'None' in YAML, not null; write `null` (or leave "
                "the value empty) if no value is meant",
                key_loc(cfg, path), evidence={"value": "None"}, key=path)


# ----------------------------------------------------------------------------- MLT021
AXOLOTL_LORA_KEYS = ("lora_r", "lora_alpha", "lora_target_modules", "lora_target_linear")


@rule("MLT021", needs="training_config")
def lora_settings_without_adapter(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    # axolotl builds a PEFT model only for `adapter: lora|qlora`; with `adapter` empty or
    # absent every lora_* setting is ignored and all weights are trained.
    if cfg.dialect != "axolotl" or cfg.raw.get("adapter") not in (None, ""):
        return
    written = [k for k in AXOLOTL_LORA_KEYS if cfg.raw.get(k) not in (None, False, "", [])]
    if not written:
        return
    pointer = "adapter" if "adapter" in cfg.raw else written[0]
    yield ctx.finding(
        f"`adapter` is {'empty' if 'adapter' in cfg.raw else 'not set'}, so "
        f"{', '.join(f'`{k}`' for k in written)} are ignored: this run fine-tunes every weight, "
        "not the LoRA run the file describes",
        key_loc(cfg, pointer), evidence={"lora_keys": written}, key=pointer)


# ----------------------------------------------------------------------------- MLT020
@rule("MLT020", needs="training_config")
def code_in_config(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    # Read here without constructing anything; the project's own loader may be unsafe_load.
    for path, line, tag in cfg.code_tags:
        short = tag.removeprefix("tag:yaml.org,2002:")
        yield ctx.finding(
            f"`{path or '(document)'}` is written with the Python tag `!!{short}`: a config loaded "
            "with yaml.unsafe_load/full_load (fvcore/detectron2 CfgNode do) runs code, and a safe "
            "loader cannot read it at all",
            Location(cfg.rel, line, pointer=path or None),
            evidence={"tag": short},
            key=path,
        )


# ----------------------------------------------------------------------------- MLT019
@rule("MLT019", needs="training_config")
def key_with_whitespace(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for path, line in cfg.key_lines.items():
        leaf = path.rsplit(".", 1)[-1]
        if leaf and leaf != leaf.strip():
            yield ctx.finding(
                f"the key {leaf!r} has surrounding whitespace, so it never matches `{leaf.strip()}`",
                Location(cfg.file_of(path), line, pointer=path[: len(path) - len(leaf)] + leaf.strip()),
                evidence={"key": leaf}, key=path)


# ----------------------------------------------------------------------------- MLR004
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PINNED = re.compile(r"^([0-9a-f]{7,40}|v?\d+(\.\d+)*)$")
BRANCHES = frozenset({"main", "master", "dev", "develop", "latest"})
REVISION_KEYS = ("revision", "model_revision", "code_revision", "tokenizer_revision")
HUB_KEYS = ("model_name_or_path", "pretrained_model_name_or_path", "tokenizer_name", "name", "model",
            "base_model", "model_id", "path")


def _hub_ids(data: Any) -> list[str]:
    return [v for p, v in walk_values(data) if isinstance(v, str) and p.rsplit(".", 1)[-1] in HUB_KEYS
            and _HUB_ID.match(v) and not v.startswith((".", "/"))
            and not v.endswith((".yaml", ".yml", ".json"))]


@rule("MLR004", needs="training_config")
def hub_revision_unpinned(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    raw = dict(cfg.raw)
    revisions = {p: v for p, v in walk_values(raw) if p.rsplit(".", 1)[-1] in REVISION_KEYS}
    for path, value in revisions.items():
        if isinstance(value, str) and value.strip().lower() in BRANCHES:
            yield ctx.finding(
                f"`{path}: {value}` names a branch, not a commit: the weights (and any remote "
                "code) change whenever the branch moves",
                key_loc(cfg, path), evidence={"revision": value}, key=path)
    pinned = any(isinstance(v, str) and _PINNED.match(v.strip()) for v in revisions.values())
    on_branch = any(isinstance(v, str) and v.strip().lower() in BRANCHES for v in revisions.values())
    hub = _hub_ids(raw)
    if pinned or on_branch or not hub:
        return  # a branch revision is the one fact already reported above
    for path, value in walk_values(raw):
        if path.rsplit(".", 1)[-1] == "trust_remote_code" and value is True:
            yield ctx.finding(
                f"`{path}: true` runs Python code from the hub repository ({hub[0]}) with no "
                "revision pinned: whatever the branch holds at download time is executed",
                key_loc(cfg, path), evidence={"repo": hub[0]}, key=path)


# ----------------------------------------------------------------------------- MLR005
SEED_KEYS = {"torchtune": "seed", "llm-foundry": "seed", "mlaudit": "seed", "huggingface": "seed",
             "hydra": "seed", "mmengine": "randomness.seed"}


@rule("MLR005", needs="training_config")
def random_seed_per_run(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    key = SEED_KEYS.get(cfg.dialect)
    if key is None or not has_path(cfg.raw, key) or get_path(cfg.raw, key) is not None:
        return
    yield ctx.finding(
        f"`{key}: null`: the {cfg.dialect} run draws a new random seed each time, so no two runs "
        "of this config are alike",
        key_loc(cfg, key), evidence={"dialect": cfg.dialect})


# ----------------------------------------------------------------------------- MLR006
_ARCHIVE = re.compile(r"^https?://\S+\.(zip|tar|tar\.gz|tgz|tar\.bz2|tar\.xz|7z|pt|pth|bin|ckpt|safetensors|"
                      r"onnx|h5|npz|pkl|gguf)(\?\S*)?$", re.I)
# `resnet50-0676ba61.pth`: torch.hub's check_hash (and OpenMMLab's loaders) verify this prefix
_HASHED_NAME = re.compile(r"[-_][0-9a-f]{8,64}\.[A-Za-z0-9.]+(\?\S*)?$")
CHECKSUM_WORDS = ("sha256", "sha1", "md5", "checksum", "hash", "digest", "sha")


@rule("MLR006", needs="training_config")
def unverified_download(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for prefix, mapping in _mappings(dict(cfg.raw)):
        has_checksum = any(any(w in str(k).lower() for w in CHECKSUM_WORDS) for k in mapping)
        if has_checksum:
            continue
        for key, value in mapping.items():
            if isinstance(value, str) and _ARCHIVE.match(value.strip()) and not _HASHED_NAME.search(value):
                path = f"{prefix}.{key}" if prefix else str(key)
                yield ctx.finding(
                    f"`{path}` downloads {value.strip()} with no checksum beside it: a changed or "
                    "tampered file is used without notice",
                    key_loc(cfg, path), evidence={"url": value.strip()}, key=path)


# ----------------------------------------------------------------------------- MLR007
DETERMINISM_KEYS = ("deterministic", "trainer.deterministic", "common.cudnn_deterministic")


@rule("MLR007", needs="training_config")
def determinism_disabled(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if cfg.kind != "training":
        return
    for key in DETERMINISM_KEYS:
        if has_path(cfg.raw, key) and get_path(cfg.raw, key) is False:
            yield ctx.finding(
                f"`{key}: false` lets cuDNN and atomic kernels run nondeterministically: two runs "
                "with the same seed still differ",
                key_loc(cfg, key), evidence={"key": key}, key=key)
