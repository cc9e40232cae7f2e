"""MLT: training-config hygiene, on the normalized TrainingConfig of any dialect."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.dialects import get_path
from mlaudit.inputs.python_code import TrainingSetup
from mlaudit.inputs.training_config import TrainingConfig
from mlaudit.inputs.training_regime import REFERENCE_FREE_PREFERENCE, uses_adapter
from mlaudit.model import Finding, Location

ADAPTIVE = frozenset({"adam", "adamw", "adamax", "nadam", "radam", "adafactor", "lamb", "lion", "rmsprop",
                      "adagrad", "adadelta"})
CPU_HINTS = (("accelerator", "cpu"), ("trainer.accelerator", "cpu"), ("use_cpu", True), ("no_cuda", True),
             ("device", "cpu"))


def loc(cfg: TrainingConfig, name: str) -> Location:
    """Where a normalized field is (its key's line) or would be (pointer only)."""
    pointer = cfg.pointer_of(name)
    return Location(cfg.file_of(pointer), line=cfg.line_of(name), pointer=pointer)


def via(cfg: TrainingConfig, pointer: str | None) -> str:
    """` (in effect in child.yaml)` when the value is inherited from a base config."""
    return f" (in effect in {cfg.rel})" if cfg.file_of(pointer) != cfg.rel else ""


def key_loc(cfg: TrainingConfig, path: str) -> Location:
    """Where a dotted key is written (in a base config when inherited)."""
    return Location(cfg.file_of(path), line=cfg.key_lines.get(path), pointer=path)


def walk_values(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar value) for every leaf of the raw config."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from walk_values(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from walk_values(v, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, data


def trains(cfg: TrainingConfig) -> bool:
    """Dialect rules judge training configs only (not launchers, data descriptions, or
    evaluation-only configs, which need no optimizer, clipping or checkpoints)."""
    return cfg.kind == "training" and cfg.regime != "eval"


def _source(cfg: TrainingConfig, name: str) -> str:
    if name in cfg.explicit:
        return "written"
    return f"the {cfg.dialect} default" if name in cfg.defaults else "not set"


@rule("MLT001", needs="training_config")
def no_validation(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg) or cfg.partial or "validation" in cfg.auto:
        return
    if cfg.regime == "rl":
        return  # online RL: rewards on fresh generations are the signal, not a held-out loss
    value = cfg.effective("validation")
    if value is False or (value is None and cfg.dialect == "mlaudit"):
        pointer = cfg.pointer_of("validation") or "validation_split"
        how = f"disabled ({_source(cfg, 'validation')})" if value is False else "not configured"
        yield ctx.finding(
            f"no validation/evaluation during training: `{pointer}` is {how}",
            Location(cfg.file_of(pointer), cfg.line_of("validation"), pointer=pointer),
            evidence={"dialect": cfg.dialect, "explicit": "validation" in cfg.explicit},
        )


VISION_WORDS = ("vision", "vit", "swin", "deit", "segformer", "mit_b", "daformer", "convnext", "detr", "yolo",
                "resnet", "unet")


def _architecture(cfg: TrainingConfig, needles: list[str]) -> tuple[str, str] | None:
    """(needle, the text it was found in) for the first architecture hint in the config."""
    texts = [cfg.model_target or ""]
    for k, v in walk_values(dict(cfg.raw)):
        leaf = k.rsplit(".", 1)[-1]
        if not isinstance(v, str):
            continue
        if leaf in {"_target_", "_component_", "class_path"}:
            texts.append(v.rsplit(".", 1)[-1].rsplit(":", 1)[-1])  # the class, not its package path
        elif leaf in {"model_name_or_path", "pretrained_model_name_or_path", "name", "arch", "architecture",
                      "model_type", "model_name", "base_model"}:
            texts.append(v)
    for text in texts:
        low = text.lower()
        hit = next((n for n in needles if n.lower() in low), None)
        if hit:
            return hit, low
    return None


def _large_sequence_engine(cfg: TrainingConfig) -> str | None:
    """DeepSpeed settings only used for large sequence models (ZeRO-3, sequence parallelism)."""
    if cfg.dialect != "deepspeed":
        return None
    if get_path(cfg.raw, "zero_optimization.stage") == 3:
        return "ZeRO stage 3 (a model too large for one device)"
    if any("seq_parallel" in str(k) for k in cfg.raw):
        return "sequence parallelism"
    return None


@rule("MLT002", needs="training_config")
def grad_clipping_off(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg) or "grad_clip" in cfg.auto or (cfg.partial and "grad_clip" not in cfg.explicit):
        return
    clip = cfg.effective("grad_clip")
    if clip not in (None, 0, 0.0):
        return
    precision = str(cfg.effective("precision") or "")
    found = _architecture(cfg, list(ctx.params.architectures))
    written = "grad_clip" in cfg.explicit
    reason = None
    if precision.startswith("fp16"):
        reason = f"precision is {precision} (loss scaling needs clipped gradients)"
    elif cfg.regime in ("lora", "preference"):
        reason = None  # adapters / a reference-anchored objective at small lr: clipping is optional
    elif found and (written or cfg.dialect == "mlaudit" or not any(w in found[1] for w in VISION_WORDS)):
        reason = f"the model looks like a {found[0]}"
    elif not written:
        engine = _large_sequence_engine(cfg)
        reason = f"the engine is set up for {engine}" if engine else None
    if reason is None:
        return
    pointer = cfg.pointer_of("grad_clip") or "grad_clip"
    raw = get_raw(cfg, pointer)
    shown = "null" if written and raw is None else f"{clip}"
    yield ctx.finding(
        f"gradient clipping is off (`{pointer}` "
        + (f"= {shown}, {_source(cfg, 'grad_clip')}" if clip is not None else "not set") + f") but {reason}",
        Location(cfg.file_of(pointer), cfg.line_of("grad_clip"), pointer=pointer),
        evidence={"grad_clip": clip, "architecture": found[0] if found else None,
                  "precision": precision or None},
    )


def get_raw(cfg: TrainingConfig, pointer: str) -> Any:
    return get_path(cfg.raw, pointer)


@rule("MLT003", needs="training_config")
def full_precision(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg) or "precision" in cfg.auto:
        return
    if cfg.effective("precision") != "fp32":
        return
    # A library default is not a decision (and many libraries pick mixed precision elsewhere):
    # only a written fp32 is reported, except in our own schema where nothing else decides.
    if "precision" not in cfg.explicit and cfg.dialect != "mlaudit":
        return
    if "cpu" in cfg.rel.lower().replace("_", "-").split("/")[-1].replace(".", "-").split("-"):
        return  # a config named for CPU runs
    if any(str(get_path(cfg.raw, k)).lower() == str(v).lower() for k, v in CPU_HINTS):
        return
    pointer = cfg.pointer_of("precision") or "precision"
    where = f"`{pointer}` as written" if "precision" in cfg.explicit else \
        f"`{pointer}` not set: the {cfg.dialect} default"
    yield ctx.finding(
        f"training in fp32 ({where}); bf16/fp16 mixed precision roughly halves activation memory "
        "on current GPUs",
        Location(cfg.file_of(pointer), cfg.line_of("precision"), pointer=pointer),
        evidence={"precision": "fp32", "explicit": "precision" in cfg.explicit},
    )


def _dropout(cfg: TrainingConfig) -> float:
    values = [cfg.dropout or 0.0]
    for k, v in walk_values(dict(cfg.raw)):
        if "dropout" in k.rsplit(".", 1)[-1] and isinstance(v, (int, float)) and not isinstance(v, bool):
            values.append(float(v))
    return max(values)


@rule("MLT004", needs="training_config")
def adam_without_weight_decay(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    opt = cfg.effective("optimizer")
    if not trains(cfg) or opt not in ("adam", "adamw") or "weight_decay" in cfg.auto:
        return
    # Judged per regime: pretraining from scratch needs weight decay; a short fine-tune from a
    # pretrained model often runs without it, and preference optimization (DPO-style) is
    # anchored by its reference model. Our own schema keeps the strict reading.
    if cfg.dialect != "mlaudit" and cfg.regime != "pretraining":
        return
    wd = cfg.effective("weight_decay")
    if wd is None and cfg.dialect != "mlaudit":
        return  # not said, no library default known: could be set elsewhere
    if wd not in (None, 0, 0.0):
        return
    dropout = _dropout(cfg)
    if dropout > ctx.params.min_dropout:
        return
    pointer = cfg.pointer_of("weight_decay") or "weight_decay"
    yield ctx.finding(
        f"{opt} with weight decay {wd or 0} "
        f"({_source(cfg, 'weight_decay') if wd is not None else 'not set'}) "
        f"and no dropout (max dropout {dropout}): the model is unregularized",
        Location(cfg.file_of(pointer), cfg.line_of("weight_decay"), pointer=pointer),
        evidence={"optimizer": opt, "weight_decay": wd or 0.0, "dropout": dropout},
    )


@rule("MLT005", needs="training_config")
def implausible_lr(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg):
        return
    opt, lr = cfg.effective("optimizer"), cfg.effective("lr")
    if opt is None or lr is None or "lr" in cfg.auto or "lr" not in cfg.explicit:
        return
    p = ctx.params
    if opt in ("lamb", "lars"):
        low, high = p.min, p.layerwise_max
    elif opt in ADAPTIVE:
        low, high = p.min, p.adam_max
    elif opt == "sgd":
        low, high = p.sgd_min, p.sgd_max
    else:
        return
    regime = None
    if low <= lr <= high:
        if opt not in ADAPTIVE:
            return
        bounds = regime_bounds(cfg, p)
        if bounds is None:
            return
        regime, low, high = bounds
        if low <= lr <= high:
            return
    side = "above" if lr > high else "below"
    what = f"for {regime}" if regime else f"for {opt}"
    yield ctx.finding(
        f"learning rate {lr:g} is {side} the plausible range [{low:g}, {high:g}] {what}"
        + via(cfg, cfg.pointer_of("lr")),
        loc(cfg, "lr"),
        evidence={"lr": lr, "optimizer": opt, "low": low, "high": high, "regime": regime},
    )


def regime_bounds(cfg: TrainingConfig, p: Any) -> tuple[str, float, float] | None:
    """(what, low, high) for an adaptive optimizer when the regime is clear: online RL and
    reference-anchored preference tuning of a full model move it in small steps, supervised
    full fine-tunes and reference-free preference objectives (ORPO) at SFT scale, LoRA at
    adapter scale. None when the regime is unknown (the generic range alone applies)."""
    adapter = cfg.regime == "lora" or uses_adapter(cfg.rel, cfg.raw)
    objective = cfg.objective or ""
    if cfg.regime == "rl" and not adapter:
        return f"online RL ({objective}) of a full model", p.min, p.rl_full_max
    if cfg.regime == "preference" and not adapter:
        if objective in REFERENCE_FREE_PREFERENCE:
            return f"a full {objective} fine-tune", p.full_min, p.adam_max
        return "reference-anchored preference tuning of a full model", p.min, p.preference_full_max
    if cfg.regime == "full":
        return "a full fine-tune", p.full_min, p.adam_max
    if cfg.regime == "lora":
        return "LoRA adapters", p.full_min, p.lora_max
    if cfg.regime == "pretraining":
        return "pretraining", p.min, p.pretraining_max
    return None


@rule("MLT006", needs="training_config")
def left_to_default(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg):
        return
    for name in ctx.params.keys:
        if name in cfg.explicit or name in cfg.auto or name not in cfg.defaults:
            continue
        key = cfg.default_keys.get(name, name)
        yield ctx.finding(
            f"`{key}` is not set: the {cfg.dialect} default ({cfg.defaults[name]}) decides it",
            Location(cfg.rel, pointer=key),
            evidence={"field": name, "default": cfg.defaults[name]},
            key=name,
        )


@rule("MLT007", needs="training_setup")
def unknown_key(setup: TrainingSetup, ctx: RuleContext) -> Iterable[Finding]:
    # A key the project's own code defines (dataclass field, argparse option) or reads
    # (`cfg.key`, `cfg["key"]`, `cfg.get("key")`) is the project's, not a typo.
    own: frozenset[str] = frozenset().union(*(m.config_names for m in setup.modules))
    for cfg in setup.configs:
        for path, suggestion in cfg.unknown_keys:
            if path.rsplit(".", 1)[-1] in own:
                continue
            hint = f" (did you mean `{suggestion}`?)" if suggestion else ""
            yield ctx.finding(
                f"`{path}` is not a known {cfg.dialect} key and is ignored{hint}",
                key_loc(cfg, path),
                evidence={"key": path, "suggestion": suggestion},
                fix_hint=f"rename to `{suggestion}`" if suggestion else None,
            )


@rule("MLT008", needs="training_config")
def conflicting_keys(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg):
        return
    if cfg.fp16 is True and cfg.bf16 is True:
        yield ctx.finding(
            f"fp16 and bf16 are both enabled (`{cfg.key_paths.get('fp16')}` line {cfg.line_of('fp16')}); "
            "only one precision can apply",
            loc(cfg, "bf16"),
            evidence={"fp16": True, "bf16": True},
            key="fp16-bf16",
        )
    # Hugging Face: max_steps silently overrides num_train_epochs. Lightning and others stop at
    # whichever limit comes first, which is a documented way to bound a run.
    if "epochs" in cfg.explicit and "max_steps" in cfg.explicit and cfg.dialect in ("huggingface", "mlaudit"):
        yield ctx.finding(
            f"both epochs ({cfg.epochs}) and max_steps ({cfg.max_steps}) are set; "
            "one silently overrides the other",
            loc(cfg, "max_steps"),
            evidence={"epochs": cfg.epochs, "max_steps": cfg.max_steps},
            key="epochs-max_steps",
        )


@rule("MLT009", needs="training_config")
def no_checkpoint_policy(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if not trains(cfg) or "save_checkpoints" in cfg.auto or cfg.partial:
        return
    value = cfg.effective("save_checkpoints")
    if value is False or (value is None and cfg.dialect == "mlaudit"):
        pointer = cfg.pointer_of("save_checkpoints") or "checkpoint"
        state = "disabled" if value is False else "missing"
        yield ctx.finding(
            f"no checkpoints are saved during training (`{pointer}` {state})",
            Location(cfg.file_of(pointer), cfg.line_of("save_checkpoints"), pointer=pointer),
            evidence={"save_checkpoints": value},
        )


@rule("MLT010", needs="training_config")
def machine_specific_path(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    prefixes = tuple(ctx.params.prefixes)
    for path, value in walk_values(dict(cfg.raw)):
        if isinstance(value, str) and value.startswith(prefixes):
            yield ctx.finding(
                f"machine-specific absolute path {value!r}",
                key_loc(cfg, path),
                evidence={"value": value},
                key=path,
            )


SECRET_KEY = re.compile(
    r"(^|_)(token|api_key|apikey|secret|secret_key|password|passwd|access_key|auth)$", re.I)
NOT_SECRET_KEY = re.compile(r"(pad|bos|eos|unk|sep|cls|mask|special|start|end)_token$", re.I)
SECRET_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9-]{10,})$"
)
PLACEHOLDER = re.compile(r"^(\$|<|\{|YOUR|xxx|changeme|null|none|\*+$)", re.I)


@rule("MLT011", needs="training_config")
def secret_in_config(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for path, value in walk_values(dict(cfg.raw)):
        if not isinstance(value, str):
            continue
        key = path.rsplit(".", 1)[-1]
        # a documented placeholder in token format ("hf_xxxx...", "sk-0000...") is not a secret:
        # real tokens are random, so they use many distinct characters
        varied = len(set(value.strip()[4:])) >= 6
        by_value = SECRET_VALUE.match(value.strip()) is not None and varied
        by_key = (SECRET_KEY.search(key) is not None and not NOT_SECRET_KEY.search(key)
                  and len(value) >= 8 and " " not in value and not PLACEHOLDER.match(value) and varied)
        if by_value or by_key:
            shown = value[:4] + "..." if len(value) > 8 else "***"
            yield ctx.finding(
                f"literal secret in `{path}` ({shown}, {len(value)} characters)",
                key_loc(cfg, path),
                evidence={"length": len(value), "matched": "token format" if by_value else "key name"},
                key=path,
            )


@rule("MLT013", needs="training_config")
def duplicate_key(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for path, line, first in cfg.duplicates:
        yield ctx.finding(
            f"`{path}` is written twice (first on line {first}); the earlier value is silently dropped",
            Location(cfg.rel, line, pointer=path),
            evidence={"first_line": first, "line": line},
            key=path,
        )
