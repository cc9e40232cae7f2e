"""Load a checkpoint into the config's model class, as a real project's checkpoint needs.

The `model:` section of the training config may say where the weights are (`state_key`, a
dotted key such as `model_state` or `checkpoint.model`), which checkpoint keys the class does
not own may be dropped (`drop_keys`, globs: training-only heads, a teacher, loss buffers; every
dropped key is reported, and a key the class owns is never dropped), and how `forward` is
called: `input_spec` entries with a `name` are passed as keyword arguments; `forward.kwargs`
adds constant keyword arguments; `forward.output` picks the output that is judged (a key, an
attribute or an index); `forward.output_name` names it in the ONNX export. Missing keys are
always an error: a model with random weights is never measured as if it were the checkpoint.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlaudit.fixers import FixError
from mlaudit.fixers.base import state_dict_of, strip_prefixes


@dataclass(frozen=True)
class LoadReport:
    """How the weights were found and fitted: where, and the keys dropped (the class does not
    own them and `drop_keys` allowed it)."""

    where: str  # "model_state", "the top level", ...
    dropped: tuple[str, ...]
    loaded: int

    def line(self) -> str:
        """One line for the report's warnings (empty when nothing was dropped)."""
        if not self.dropped:
            return ""
        more = len(self.dropped) - 5
        shown = ", ".join(self.dropped[:5]) + (f" (+{more} more)" if more > 0 else "")
        return (f"model.drop_keys: dropped {len(self.dropped)} checkpoint keys the model class does not "
                f"own: {shown}")  # fmt: skip


def weights_at(checkpoint: Any, state_key: str | None) -> tuple[dict[str, Any], str]:
    """The state dict under the dotted `state_key` (walking nested mappings; a flat file with
    dotted names works too), else found under the usual keys."""
    if not state_key:
        weights, key = state_dict_of(checkpoint)
        return dict(weights), key or "the top level"
    obj: Any = checkpoint
    for part in state_key.split("."):
        if isinstance(obj, Mapping) and part in obj:
            obj = obj[part]
            continue
        obj = None
        break
    if isinstance(obj, Mapping):
        weights, inner = state_dict_of(obj)
        return dict(weights), f"{state_key}.{inner}" if inner else state_key
    if isinstance(checkpoint, Mapping):  # flat: {"model_state.fc.weight": ...}
        prefix = state_key + "."
        flat = {k[len(prefix):]: v for k, v in checkpoint.items()
                if isinstance(k, str) and k.startswith(prefix)}  # fmt: skip
        if flat:
            return flat, state_key
    keys = ", ".join(sorted(str(k) for k in checkpoint)[:8]) if isinstance(checkpoint, Mapping) else "none"
    raise FixError(f"model.state_key {state_key!r}: no state dict there (top-level keys: {keys})")


def fit_weights(
    owned: Sequence[str], weights: Mapping[str, Any], drop_keys: Sequence[str], where: str
) -> tuple[dict[str, Any], LoadReport]:
    """The checkpoint's weights renamed (wrapper prefixes stripped) and cut to the keys the
    class owns, dropping only unowned keys that match `drop_keys`. Unowned keys not allowed
    by `drop_keys`, and owned keys the checkpoint lacks, are a FixError naming a few."""
    rename = strip_prefixes(list(weights))
    named = {rename[k]: v for k, v in weights.items()}
    own = set(owned)
    unowned = [k for k in named if k not in own]
    dropped = [k for k in unowned if any(fnmatch.fnmatchcase(k, g) for g in drop_keys)]
    left = [k for k in unowned if k not in set(dropped)]
    missing = [k for k in owned if k not in named]
    if left:
        raise FixError(
            f"the checkpoint has {len(left)} keys the model class does not own (e.g. {', '.join(left[:3])}): "
            "list them in model.drop_keys (globs) to drop them, if they are training-only"
        )
    if missing:
        raise FixError(
            f"the checkpoint lacks {len(missing)} keys the model class needs (e.g. {', '.join(missing[:3])})"
        )
    kept = {k: v for k, v in named.items() if k in own}
    return kept, LoadReport(where, tuple(dropped), len(kept))


def keyword_interface(
    model: Any, names: Sequence[str], keyword: bool, forward: Mapping[str, Any]
) -> Any:
    """`model` as a module with positional inputs `names` that calls `forward` with them (as
    keyword arguments when `keyword`), plus the constant `forward.kwargs`, and returns the one
    output `forward.output` names (default: the first), so that export, fidelity and timing
    see one tensor. The model is its submodule `inner`."""
    import torch

    constant = dict(forward.get("kwargs") or {})
    pick = forward.get("output")

    class KeywordInterface(torch.nn.Module):
        """Positional inputs -> model(**{name: input} or *inputs, **constant kwargs) -> one output."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.input_names = list(names)
            name = forward.get("output_name") or (pick if isinstance(pick, str) else "output")
            self.output_names = [str(name)]

        def forward(self, *inputs: Any) -> Any:
            if keyword:
                out = self.inner(**dict(zip(self.input_names, inputs, strict=True)), **constant)
            else:
                out = self.inner(*inputs, **constant)
            return select_output(out, pick)

    return KeywordInterface().eval()


FORWARD_KEYS = ("kwargs", "output", "output_name")


def check_load_options(cfg: Any) -> None:
    """The `model:` load keys as written, checked: a typo or a wrong type is one line (exit 2),
    never an option silently ignored."""
    model = (cfg.raw or {}).get("model")
    if not isinstance(model, Mapping):
        return
    where = f"{cfg.rel}: model."
    key = model.get("state_key", "x")
    if not (isinstance(key, str) and key.strip()):
        raise FixError(f"{where}state_key must be a dotted key such as model_state, not {key!r}")
    drop = model.get("drop_keys")
    if drop is not None and not (isinstance(drop, str) or (
            isinstance(drop, (list, tuple)) and all(isinstance(d, str) for d in drop))):
        raise FixError(f"{where}drop_keys must be a list of globs such as ['aux_head.*'], not {drop!r}")
    forward = model.get("forward")
    if forward is None:
        return
    if not isinstance(forward, Mapping):
        raise FixError(f"{where}forward must be a mapping with {', '.join(FORWARD_KEYS)}")
    unknown = sorted(set(map(str, forward)) - set(FORWARD_KEYS))
    if unknown:
        raise FixError(f"{where}forward has no key {unknown[0]!r} (keys: {', '.join(FORWARD_KEYS)})")
    if "kwargs" in forward and not isinstance(forward["kwargs"], Mapping):
        raise FixError(f"{where}forward.kwargs must be a mapping of keyword arguments")
    if "output" in forward and not isinstance(forward["output"], (str, int)):
        raise FixError(f"{where}forward.output must be an output name or index, not {forward['output']!r}")


def load_config_model(cfg: Any, checkpoint: Any) -> tuple[Any, LoadReport]:
    """Build `cfg`'s model class, load the checkpoint's weights into it as the `model:`
    section says (state key, dropped keys) and give it the calling convention of its
    `input_spec` and `forward` (module docstring). Project code runs here: callers check
    `--run-model` first."""
    from mlaudit.inputs.model_builder import ModelBuildError, build_model

    check_load_options(cfg)
    try:
        model = build_model(cfg, allow_code=True)
    except ModelBuildError as err:
        raise FixError(str(err)) from None
    weights, where = weights_at(checkpoint, cfg.model_state_key)
    kept, report = fit_weights(list(model.state_dict()), weights, cfg.model_drop_keys, where)
    try:
        model.load_state_dict(kept, strict=True)
    except RuntimeError as err:  # shapes that do not fit: the last line names the tensor
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        last = lines[-1] if lines else err
        raise FixError(f"the checkpoint does not fit {cfg.model_target}: {last}") from None
    model = model.float().eval()
    names = [spec.get("name") for spec in cfg.input_spec]
    if any(names) and not all(names):
        raise FixError(f"{cfg.rel}: name every model.input_spec entry (keyword inputs) or none")
    if any(names) or cfg.model_forward:
        named = [str(n) for n in names] if all(names) else [f"input_{i}" for i in range(len(names))]
        model = keyword_interface(model, named, all(names) and bool(names), cfg.model_forward)
    return model, report


def select_output(out: Any, pick: Any) -> Any:
    """The judged output of a model call: `pick` as a key (dicts, ModelOutput), an attribute,
    or an index; without `pick`, the first output."""
    if pick is None:
        if isinstance(out, Mapping):
            return next(iter(out.values()))
        return out[0] if isinstance(out, (tuple, list)) else out
    if isinstance(pick, int) and isinstance(out, (tuple, list)):
        return out[pick]
    if isinstance(out, Mapping) and pick in out:
        return out[pick]
    if isinstance(pick, str) and hasattr(out, pick):
        return getattr(out, pick)
    raise FixError(f"model.forward.output {pick!r}: the model's output has no such key, attribute or index")
