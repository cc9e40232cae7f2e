"""MLT022-MLT023: settings that cannot do what they are there for, judged on the config as it
runs (a Hydra member inside its composed config, see inputs/hydra_compose).

- MLT022: an early-stopping callback that can never stop the run (min_epochs >= max_epochs, or
  fewer validation checks than its patience).
- MLT023: a learning rate searched on a linear scale over several decades.
- MLT024: a Hugging Face / TRL run that leaves no checkpoint it could resume from mid-run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mlaudit.checks.config_hygiene import key_loc
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.dialects import get_path
from mlaudit.inputs.training_config import TrainingConfig
from mlaudit.model import Finding, Location

# Lightning's EarlyStopping defaults (lightning 2.x): patience 3, one check per validation run
EARLY_STOPPING_PATIENCE = 3
_TARGET_KEYS = ("_target_", "class_path")


def _early_stoppers(data: Any, prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(dotted path, settings) of every EarlyStopping callback in the config."""
    if isinstance(data, Mapping):
        target = next((str(data[k]) for k in _TARGET_KEYS if isinstance(data.get(k), str)), "")
        if target.rsplit(".", 1)[-1] == "EarlyStopping":
            init_args = data.get("init_args")
            yield prefix, init_args if isinstance(init_args, Mapping) else data
            return
        for key, value in data.items():
            yield from _early_stoppers(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _early_stoppers(value, f"{prefix}.{i}" if prefix else str(i))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@rule("MLT022", needs="training_config")
def early_stopping_cannot_stop(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if cfg.kind != "training" or cfg.regime == "eval" or cfg.partial:
        return  # only a whole run (a composed Hydra config, a LightningCLI file) can tell
    written = cfg.raw.get("trainer")
    if not isinstance(written, Mapping):
        return
    init_args = written.get("init_args")
    trainer: Mapping[str, Any] = init_args if isinstance(init_args, Mapping) else written
    base = "trainer.init_args." if isinstance(init_args, Mapping) else "trainer."
    max_epochs, min_epochs = _int(trainer.get("max_epochs")), _int(trainer.get("min_epochs"))
    every = _int(trainer.get("check_val_every_n_epoch")) or 1
    per_epoch = trainer.get("val_check_interval") in (None, 1.0, 1)
    if max_epochs is None or max_epochs <= 0 or trainer.get("max_steps") not in (None, -1):
        return  # a step budget or an open-ended run: the number of checks is not known here
    for path, settings in _early_stoppers(cfg.raw):
        if min_epochs is not None and min_epochs >= max_epochs:
            yield ctx.finding(
                f"`{base}min_epochs` ({min_epochs}) is not below `max_epochs` ({max_epochs}): "
                f"the early-stopping callback `{path}` can never end the run early",
                key_loc(cfg, f"{base}min_epochs"),
                evidence={"min_epochs": min_epochs, "max_epochs": max_epochs, "callback": path},
                key=f"{path}:min_epochs")
            continue
        patience = _int(settings.get("patience"))
        patience = EARLY_STOPPING_PATIENCE if patience is None and "patience" not in settings else patience
        checks = max_epochs // every
        if patience is None or not per_epoch or checks > patience:
            continue
        where = f"{path}.patience" if "patience" in settings else f"{base}max_epochs"
        yield ctx.finding(
            f"early stopping `{path}` waits {patience} validation checks without improvement, but "
            f"the run has at most {checks} (max_epochs {max_epochs}, every {every} epoch(s)): "
            "it can never trigger",
            key_loc(cfg, where),
            evidence={"patience": patience, "checks": checks, "callback": path},
            key=f"{path}:patience")


# ----------------------------------------------------------------------------- MLT023
_LR_LEAF = re.compile(r"(^|[._])(lr|learning_rate|base_lr|lr0)$")
# Hydra sweeper search spaces: `interval(a, b)` (Optuna/Nevergrad: uniform) unless wrapped in
# `tag(log, ...)`; `uniform(a, b)` spelled out.
_LINEAR = re.compile(r"^\s*(interval|uniform)\(\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*\)\s*$")
SEARCH_SPACE_KEYS = ("hydra.sweeper.params", "hydra.sweeper.search_space")


@rule("MLT023", needs="training_config")
def learning_rate_searched_linearly(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    for section in SEARCH_SPACE_KEYS:
        params = get_path(cfg.raw, section)
        if not isinstance(params, Mapping):
            continue
        for name, space in params.items():
            if not _LR_LEAF.search(str(name)) or not isinstance(space, str):
                continue
            match = _LINEAR.match(space)
            if not match:
                continue  # tag(log, ...), choice(...), a fixed value
            try:
                low, high = float(match.group(2)), float(match.group(3))
            except ValueError:
                continue
            if low <= 0 or high / low < ctx.params.min_decades_ratio:
                continue
            path = f"{section}.{name}"
            share = (high - max(low, high / 10)) / (high - low)
            where = key_loc(cfg, path)
            if where.line is None:  # a dotted key name (`model.optimizer.lr:`) has no entry
                where = Location(cfg.file_of(section), _line_of_key(cfg, section, str(name)), pointer=path)
            yield ctx.finding(
                f"`{name}` is searched uniformly over {space.strip()}: {share:.0%} of the trials "
                "land in the top decade; search a learning rate on a log scale "
                "(`tag(log, interval(...))`)",
                where,
                evidence={"low": low, "high": high},
                key=path)


def _line_of_key(cfg: TrainingConfig, section: str, name: str) -> int | None:
    """Line of `name:` below the section's own line, when this file wrote the section."""
    start = cfg.key_lines.get(section)
    if start is None or cfg.file_of(section) != cfg.rel:
        return None
    pattern = re.compile(r"^\s*['\"]?" + re.escape(name) + r"['\"]?\s*:")
    for number, text in enumerate(cfg.text.splitlines()[start:], start + 1):
        if pattern.match(text):
            return number
    return None


# ----------------------------------------------------------------------------- MLT024
HF_TRAINER_DIALECTS = frozenset({"huggingface", "llamafactory"})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@rule("MLT024", needs="training_config")
def no_resumable_checkpoint(cfg: TrainingConfig, ctx: RuleContext) -> Iterable[Finding]:
    if cfg.kind != "training" or cfg.regime == "eval" or cfg.dialect not in HF_TRAINER_DIALECTS:
        return
    raw = cfg.raw
    strategy = str(raw.get("save_strategy", "")).strip().lower()
    if strategy in ("no", "none", "false"):
        return  # no checkpoint at all is MLT009's fact
    epochs = _number(raw.get("num_train_epochs"))
    steps = _number(raw.get("max_steps"))
    by_epochs = steps is None or steps <= 0  # max_steps > 0 overrides num_train_epochs
    if raw.get("save_only_model") is True and by_epochs and epochs is not None and epochs >= 2:
        yield ctx.finding(
            f"`save_only_model: true` on a {epochs:g}-epoch run: checkpoints hold no optimizer, "
            "scheduler or RNG state, so a failure can only restart from the weights with a fresh "
            "optimizer (the Trainer cannot resume from them)",
            key_loc(cfg, "save_only_model"), evidence={"epochs": epochs}, key="save_only_model")
    elif (cfg.regime == "rl" and strategy == "epoch" and by_epochs and epochs is not None
          and epochs <= 1):
        yield ctx.finding(
            "online RL saved per epoch in a single-epoch run: the first checkpoint is written "
            "when training ends, so a crash loses every generation step before it (save by "
            "`steps`)",
            key_loc(cfg, "save_strategy"), evidence={"epochs": epochs}, key="save_strategy")
