"""What kind of training a config describes, when the file says so clearly enough.

- `objective_of(rel, data)`: the training objective (sft, dpo, orpo, grpo, ...) from TRL-style
  keys or from the words of the file's path (`recipes/zephyr/dpo/config_full.yaml`), else None.
- `regime_for(objective, data)`: the regime the rules judge by (pretraining | full | lora |
  preference | rl | eval) for a dialect whose own mapper could not tell.

Only clear evidence counts: a path word must be a whole word of a folder or file name, and
keys must belong to one objective. Anything else stays None (the rules then stay generic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# reference-anchored preference objectives, reference-free ones, online RL from rewards
REFERENCE_PREFERENCE = frozenset({"dpo", "ipo", "kto", "rpo", "bco"})
REFERENCE_FREE_PREFERENCE = frozenset({"orpo", "simpo", "cpo"})
ONLINE_RL = frozenset({"grpo", "ppo", "rloo", "online_dpo", "reinforce"})
OBJECTIVES = REFERENCE_PREFERENCE | REFERENCE_FREE_PREFERENCE | ONLINE_RL | {"sft", "pretrain"}
_WORD = re.compile(r"[a-z0-9]+")
# keys only an online-RL trainer reads (TRL GRPOConfig/RLOOConfig/PPOConfig)
RL_KEYS = frozenset({"reward_funcs", "num_generations", "reward_model_name_or_path", "reward_model_path"})
ADAPTER_KEYS = ("use_peft", "load_in_4bit", "load_in_8bit")


def objective_of(rel: str, data: Mapping[str, Any]) -> str | None:
    """The objective named by TRL keys, else by a whole word of the path, else None."""
    if RL_KEYS & {str(k) for k in data}:
        return "grpo" if "num_generations" in data or "reward_funcs" in data else "ppo"
    words = {w for part in rel.lower().split("/") for w in _WORD.findall(part)}
    named = words & OBJECTIVES
    if len(named) == 1:
        return next(iter(named))
    if "pretraining" in words:
        return "pretrain"
    return None


def uses_adapter(rel: str, data: Mapping[str, Any]) -> bool:
    """A PEFT adapter is trained (TRL `use_peft`, a quantized base, `lora`/`qlora` in the name)."""
    if any(data.get(k) is True for k in ADAPTER_KEYS):
        return True
    words = set(_WORD.findall(rel.lower().rsplit("/", 1)[-1]))
    return bool(words & {"lora", "qlora"})


def regime_for(objective: str | None, rel: str, data: Mapping[str, Any]) -> str | None:
    """The regime for an objective (None when there is none): LoRA wins over the objective's
    own regime for supervised fine-tuning, as the learning-rate scale follows the adapter."""
    if objective is None:
        return None
    if objective in REFERENCE_PREFERENCE | REFERENCE_FREE_PREFERENCE:
        return "preference"
    if objective in ONLINE_RL:
        return "rl"
    if objective == "pretrain":
        return "pretraining"
    return "lora" if uses_adapter(rel, data) else "full"
