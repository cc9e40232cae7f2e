"""MLT012: model sizes in the training config vs. the tensor shapes the checkpoint stores."""

from __future__ import annotations

from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.config_pairing import CheckpointWithConfig
from mlaudit.model import Finding, Location

VOCAB_KEYS = ("vocab_size", "n_vocab", "num_embeddings", "ntoken", "num_tokens")
HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd", "hidden_dim", "embed_dim", "embedding_dim", "dim")


def _first(kwargs, keys):
    for k in keys:
        v = kwargs.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return k, v
    return None, None


@rule("MLT012", needs="checkpoint_config")
def config_checkpoint_mismatch(pair: CheckpointWithConfig, ctx: RuleContext) -> Iterable[Finding]:
    cfg, info = pair.config, pair.checkpoint
    embeddings = [t for t in info.tensors if len(t.shape) == 2 and "emb" in t.name.lower()
                  and "pos" not in t.name.lower() and t.name.endswith("weight")]
    if not embeddings:
        return
    rows = sorted({t.shape[0] for t in embeddings})
    cols = sorted({t.shape[1] for t in embeddings})
    pointer_prefix = "model.init_args." if "init_args" in (cfg.raw.get("model") or {}) else "model."
    for keys, stored, what in ((VOCAB_KEYS, rows, "vocab size"), (HIDDEN_KEYS, cols, "hidden size")):
        key, value = _first(cfg.model_kwargs, keys)
        if key is None or value in stored:
            continue
        pointer = pointer_prefix + key
        yield ctx.finding(
            f"config {what} `{key}: {value}` disagrees with the checkpoint {info.rel} "
            f"(embedding {embeddings[0].name} is {'x'.join(map(str, embeddings[0].shape))})",
            Location(cfg.rel, cfg.key_lines.get(pointer), pointer=pointer),
            evidence={"config": value, "checkpoint": stored, "checkpoint_file": info.rel},
            key=f"{info.rel}:{key}",
        )
