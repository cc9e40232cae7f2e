"""Where the architecture and the inputs of a model-level fix come from.

Architecture: the training config's model class (only with --run-model, since it runs project
code), a TorchScript or torch.export file, or an ONNX file (quantized directly). Inputs: the
`x` array of --eval-data (.npz) when given, else synthetic inputs from the config's input spec
or the ONNX graph's declared inputs (with a warning: fidelity on random inputs is weaker).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
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
    # fn(n, dims) -> arrays: inputs made by the model's own preprocessing (a tokenizer)
    make: Callable[[int, dict[str, int]], tuple] | None = None
    origin: str = "synthetic"  # synthetic | eval-data | tokenizer

    @property
    def dynamic_dims(self) -> dict[str, int]:
        return {d: self.defaults.get(d, 8) for s in self.shapes for d in s if isinstance(d, str)}

    def batch(self, n: int, **dims: int) -> tuple:
        """n samples; named dims override their default size."""
        import numpy as np

        if self.make is not None:
            return self.make(n, dims)
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


HF_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # forward order of BERT-like encoders
HF_SEQ = 32  # default padded length of tokenizer-made batches (the parity check also uses half)


def _hf_wrapper(inner: Any, names: list[str], output_name: str) -> Any:
    """The model as a module whose positional inputs are `names` (a prefix of HF_INPUTS) and
    whose single output is the model's first one, named like the framework's own exporters."""
    import torch

    class HFInterface(torch.nn.Module):
        """input_ids[, attention_mask[, token_type_ids]] -> the first output (hidden states or
        logits). Keyword calls: positional order of `forward` differs across transformers."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.input_names = list(names)
            self.output_names = [output_name]

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
            given = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            kwargs = {n: given[n] for n in self.input_names}
            return self.inner(**kwargs, return_dict=False)[0]

    return HFInterface().eval()


def _hf_tokenizer(path: Path) -> Any:
    """The directory's own tokenizer, or None when it has none (never fetched from a hub)."""
    import transformers

    if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
        return None
    try:
        return transformers.AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False
        )
    except Exception:  # a broken or foreign tokenizer: fall back to synthetic ids (warned)
        return None


def load_hf(path: Path) -> tuple[Any, InputSource]:
    """A Hugging Face model directory (needs the optional `transformers`): the model wrapped to
    take the inputs its forward uses (input_ids, attention_mask, token_type_ids) and return its
    first output; inputs are padded batches made by the directory's tokenizer from a built-in
    text sample (synthetic ids with random-length masks when it has no tokenizer). Remote code
    is never trusted."""
    try:
        import transformers
    except ImportError:
        raise FixError(
            f"{path.name}: a Hugging Face model directory needs transformers (pip install 'mlaudit[hf]')"
        ) from None
    import inspect

    import numpy as np
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
    accepted = set(inspect.signature(model.forward).parameters)
    tokenizer = _hf_tokenizer(path)
    made = set(tokenizer.model_input_names) if tokenizer is not None else set(HF_INPUTS)
    names = ["input_ids"]
    for extra in HF_INPUTS[1:]:  # a prefix of HF_INPUTS: the wrapper's positional order
        if extra not in accepted or extra not in made:
            break
        if extra == "token_type_ids" and int(getattr(config, "type_vocab_size", 0) or 0) < 1:
            break
        names.append(extra)
    positions = int(getattr(config, "max_position_embeddings", HF_SEQ) or HF_SEQ)
    seq = int(min(HF_SEQ, positions))
    vocab = int(getattr(config, "vocab_size", 2) or 2)
    src = InputSource(names, [["sequence"]] * len(names), ["int64"] * len(names), {"sequence": seq},
                      int_ranges=[(0, vocab), (0, 2), (0, 1)][: len(names)])  # fmt: skip
    if tokenizer is not None:
        from mlaudit.fixers.text_sample import texts

        def make(n: int, dims: dict[str, int]) -> tuple:
            length = int(dims.get("sequence", seq))
            enc = tokenizer(
                texts(n), padding="max_length", truncation=True, max_length=length, return_tensors="np"
            )
            return tuple(np.ascontiguousarray(enc[k].astype(np.int64)) for k in names)

        src.make, src.synthetic, src.origin = make, False, "tokenizer"
    else:

        def make(n: int, dims: dict[str, int]) -> tuple:
            # random ids with right padding of random length: masks still hide real pad tokens
            length = int(dims.get("sequence", seq))
            rng = np.random.default_rng(0)
            ids = rng.integers(1, vocab, size=(n, length)).astype(np.int64)
            lengths = rng.integers(max(1, length // 4), length + 1, size=n)
            mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
            ids = ids * mask
            return (ids, mask, np.zeros_like(ids))[: len(names)]

        src.make = make
    with torch.inference_mode():
        probe = model(
            **dict(zip(names, (torch.from_numpy(a) for a in src.batch(1)), strict=True)), return_dict=True
        )
    output_name = next(iter(probe.keys()), "output")
    return _hf_wrapper(model, names, output_name), src


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
    src.synthetic, src.origin = False, "eval-data"
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
