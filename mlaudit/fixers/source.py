"""Where the architecture and the inputs of a model-level fix come from.

Architecture: the training config's model class (only with --run-model, since it runs project
code), a TorchScript or torch.export file, or an ONNX file (quantized directly). Inputs: the
`x` array of --eval-data (.npz) when given, else synthetic inputs from the config's input spec
or the ONNX graph's declared inputs (with a warning: fidelity on random inputs is weaker).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError


def artifact_kind(path: Path) -> str:
    """onnx | torchscript | torch-export | hf-dir | checkpoint, by content where the format allows."""
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf-dir"
        raise FixError(f"{path}: a directory, but not a Hugging Face model directory (no config.json)")
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(
            n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json")
            for n in names
        ):
            return "torch-export"
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
    return "checkpoint"


@dataclass
class InputSource:
    """Model inputs at any batch size (and sequence length, where a dim is dynamic)."""

    names: list[str]
    shapes: list[list[int | str]]  # without batch; str = a named dynamic dim
    dtypes: list[str]
    defaults: dict[str, int] = field(default_factory=dict)  # dynamic dim -> default size
    data: Any = None  # numpy x from --eval-data (single-input models)
    synthetic: bool = True
    int_ranges: list[tuple[int, int]] | None = None  # [low, high) per input, for integer inputs (token ids)

    @property
    def dynamic_dims(self) -> dict[str, int]:
        return {d: self.defaults.get(d, 8) for s in self.shapes for d in s if isinstance(d, str)}

    def batch(self, n: int, **dims: int) -> tuple:
        """n samples; named dims override their default size."""
        import numpy as np

        if self.data is not None:
            x = self.data
            reps = -(-n // len(x))
            x = np.concatenate([x] * reps)[:n] if reps > 1 else x[:n]
            for axis, d in enumerate(self.shapes[0], start=1):
                if isinstance(d, str) and d in dims:
                    x = np.take(x, range(dims[d]), axis=axis)
            return (np.ascontiguousarray(x),)
        rng = np.random.default_rng(0)
        out = []
        for i, (shape, dtype) in enumerate(zip(self.shapes, self.dtypes, strict=True)):
            full = [n] + [
                int(dims.get(d, self.defaults.get(d, 8))) if isinstance(d, str) else int(d) for d in shape
            ]
            if "int" in dtype:
                low, high = self.int_ranges[i] if self.int_ranges else (0, 2)
                out.append(rng.integers(low, high, size=full).astype(dtype))
            else:
                out.append(rng.standard_normal(full).astype(dtype))
        return tuple(out)


def from_config(cfg: Any) -> InputSource:
    """Input spec of a training config (mlaudit dialect: model.input_spec)."""
    if not cfg.input_spec:
        raise FixError(f"{cfg.rel}: the config has no model.input_spec (needed for model-level fixes)")
    shapes, dtypes, defaults, ranges = [], [], {}, []
    for spec in cfg.input_spec:
        shapes.append(list(spec["shape"]))
        dtypes.append(str(spec.get("dtype", "float32")))
        defaults.update({k: int(v) for k, v in (spec.get("dims") or {}).items()})
        ranges.append((int(spec.get("low", 0)), int(spec.get("high", 2))))
    names = [f"input_{i}" for i in range(len(shapes))]
    return InputSource(names, shapes, dtypes, defaults, int_ranges=ranges)


def load_hf(path: Path) -> tuple[Any, InputSource]:
    """A Hugging Face model directory (needs the optional `transformers`): the model wrapped to
    take token ids and return its first output (logits), and token-id inputs with a dynamic
    sequence length. Remote code is never trusted."""
    try:
        import transformers
    except ImportError:
        raise FixError(
            f"{path.name}: a Hugging Face model directory needs transformers (pip install 'mlaudit[hf]')"
        ) from None
    import torch

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        # A local directory only: never fall back to the hub if a file is missing.
        config = transformers.AutoConfig.from_pretrained(
            str(path), trust_remote_code=False, local_files_only=True
        )
        arch = (getattr(config, "architectures", None) or ["AutoModel"])[0]
        cls = getattr(transformers, arch, None) or transformers.AutoModel
        model = cls.from_pretrained(str(path), trust_remote_code=False, local_files_only=True).eval()
    except Exception as err:  # config/weights problems come in many types
        raise FixError(
            f"{path.name}: cannot load the Hugging Face model: {str(err).splitlines()[0]}"
        ) from None

    class FirstOutput(torch.nn.Module):
        """input_ids -> the model's first output (logits for task heads)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, return_dict=False)[0]

    seq = int(min(16, getattr(config, "max_position_embeddings", 16) or 16))
    vocab = int(getattr(config, "vocab_size", 2) or 2)
    src = InputSource(["input_ids"], [["seq"]], ["int64"], {"seq": seq}, int_ranges=[(0, vocab)])
    return FirstOutput(model).eval(), src


def from_onnx(path: Path) -> InputSource:
    """Input names, shapes and dtypes declared by an ONNX graph."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    names, shapes, dtypes, defaults = [], [], [], {}
    for inp in model.graph.input:
        if inp.name in init:
            continue
        t = inp.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim][1:]
        for d in dims:
            if isinstance(d, str):
                defaults.setdefault(d, 8)
        names.append(inp.name)
        shapes.append([d if isinstance(d, str) else int(d) for d in dims])
        dtypes.append(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name)
    return InputSource(names, shapes, dtypes, defaults)


def attach_eval_data(src: InputSource, path: Path) -> Any:
    """Use --eval-data's `x` as the inputs; returns its labels `y` (or None)."""
    import numpy as np

    try:
        with np.load(path) as data:
            x = data["x"] if "x" in data else None
            y = data["y"] if "y" in data else None
    except (OSError, ValueError, KeyError) as err:
        raise FixError(f"--eval-data {path}: cannot be read as .npz with arrays x[, y] ({err})") from None
    if x is None:
        raise FixError(f"--eval-data {path}: no array named 'x'")
    if len(src.shapes) != 1:
        raise FixError("--eval-data supports single-input models only")
    want = [src.defaults.get(d, 8) if isinstance(d, str) else d for d in src.shapes[0]]
    if list(x.shape[1:]) != want:
        raise FixError(f"--eval-data x has sample shape {list(x.shape[1:])}, the model expects {want}")
    if y is not None and len(y) != len(x):
        raise FixError(f"--eval-data: {len(x)} inputs but {len(y)} labels")
    src.data = x.astype(src.dtypes[0])
    src.synthetic = False
    return y


def load_scripted(path: Path, kind: str) -> Any:
    """A TorchScript or torch.export module (no pickled Python objects are executed)."""
    import torch

    try:
        if kind == "torchscript":
            return torch.jit.load(str(path), map_location="cpu").eval()
        return torch.export.load(str(path)).module()
    except Exception as err:  # format-specific errors: one line
        raise FixError(f"{path.name}: cannot load {kind} file: {str(err).splitlines()[0]}") from None
