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
    data: tuple | None = None  # numpy arrays from --eval-data, one per input

    @property
    def samples(self) -> int | None:
        """How many samples --eval-data holds (None for inputs made on demand)."""
        return None if self.data is None else len(self.data[0])

    synthetic: bool = True
    int_ranges: list[tuple[int, int]] | None = None  # [low, high) per input, for integer inputs (token ids)
    # fn(n, dims) -> arrays: inputs made by the model's own preprocessing (a tokenizer)
    make: Callable[[int, dict[str, int]], tuple] | None = None
    origin: str = "synthetic"  # synthetic | eval-data | tokenizer

    @property
    def dynamic_dims(self) -> dict[str, int]:
        return {
            d: self.defaults.get(d, DYNAMIC_DEFAULT) for s in self.shapes for d in s if isinstance(d, str)
        }

    def batch(self, n: int, **dims: int) -> tuple:
        """n samples; named dims override their default size."""
        import numpy as np

        if self.make is not None:
            return self.make(n, dims)
        if self.data is not None:
            out_data = []
            for x, shape in zip(self.data, self.shapes, strict=True):
                reps = -(-n // len(x))
                x = np.concatenate([x] * reps)[:n] if reps > 1 else x[:n]
                for axis, d in enumerate(shape, start=1):
                    if isinstance(d, str) and d in dims and dims[d] <= x.shape[axis]:
                        x = np.take(x, range(dims[d]), axis=axis)
                out_data.append(np.ascontiguousarray(x))
            return tuple(out_data)
        rng = np.random.default_rng(0)
        out = []
        for i, (shape, dtype) in enumerate(zip(self.shapes, self.dtypes, strict=True)):
            full = [n] + [
                int(dims.get(d, self.defaults.get(d, DYNAMIC_DEFAULT))) if isinstance(d, str) else int(d)
                for d in shape
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
    # named entries are the forward's keyword inputs (and the ONNX input names)
    names = [str(spec.get("name") or f"input_{i}") for i, spec in enumerate(cfg.input_spec)]
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


SPATIAL_DEFAULT = 64  # dynamic H/W of image-like (4-D float) inputs: conv strides need room
DYNAMIC_DEFAULT = 8  # any other dynamic dim without a hint


def _int_range_hints(model: Any, name: str) -> tuple[int, int] | None:
    """[0, rows) for an integer input used (directly or through Cast) as the indices of a
    Gather from a constant table: token or byte ids index an embedding of that many rows."""
    from onnx import numpy_helper

    tables = {i.name: i for i in model.graph.initializer}
    consts = {
        n.output[0]: n.attribute[0].t for n in model.graph.node if n.op_type == "Constant" and n.attribute
    }
    aliases = {name}
    for node in model.graph.node:  # follow Cast / Identity / Unsqueeze chains
        if (
            node.op_type in ("Cast", "Identity", "Unsqueeze", "Reshape")
            and node.input
            and node.input[0] in aliases
        ):
            aliases.add(node.output[0])

    def table(name: str) -> Any:
        return numpy_helper.to_array(tables[name] if name in tables else consts[name])

    rows = [
        int(table(n.input[0]).shape[0])
        for n in model.graph.node
        if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] in aliases
        and (n.input[0] in tables or n.input[0] in consts)
    ]  # fmt: skip
    return (0, min(rows)) if rows else None


def from_onnx(path: Path) -> InputSource:
    """Input names, shapes and dtypes declared by an ONNX graph. Dynamic dims (named, or
    unnamed `?`) get a default size (SPATIAL_DEFAULT for the H/W of 4-D float inputs); integer
    inputs feeding a Gather get ids in the table's range. Inputs without a leading batch axis
    (recurrent state laid out [layers, batch, hidden], scalars such as a sample rate) are
    refused with the reason: mlaudit feeds batches along axis 0."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    init = {i.name for i in model.graph.initializer}
    names: list[str] = []
    shapes: list[Any] = []
    dtypes: list[Any] = []
    defaults: dict[str, Any] = {}
    ranges: list[Any] = []
    batch_symbol = None
    for inp in model.graph.input:
        if inp.name in init:
            continue
        t = inp.type.tensor_type
        all_dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "") for d in t.shape.dim]
        if (
            not all_dims
            or all_dims[0] not in ("", batch_symbol or all_dims[0])
            or (isinstance(all_dims[0], int) and all_dims[0] > 1)
        ):
            raise FixError(
                f"{path.name}: input {inp.name!r} has shape {all_dims or 'scalar'}, with no batch axis first "
                "(a recurrent state or a scalar such as a sample rate?): stateful models are not "
                "supported by `mlaudit fix` yet; quantize them with the runtime's own tools"
            )
        batch_symbol = batch_symbol or all_dims[0]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        dims: list[int | str] = []
        for axis, d in enumerate(all_dims[1:], start=1):
            if d == "" or (isinstance(d, int) and d <= 0):
                d = f"{inp.name}_dim{axis}"  # unknown size: dynamic
            if isinstance(d, str):
                spatial = len(all_dims) == 4 and axis >= 2 and "float" in dtype
                defaults.setdefault(d, SPATIAL_DEFAULT if spatial else DYNAMIC_DEFAULT)
            dims.append(d)
        names.append(inp.name)
        shapes.append(dims)
        dtypes.append(dtype)
        ranges.append(_int_range_hints(model, inp.name) or (0, 2))
    return InputSource(names, shapes, dtypes, defaults, int_ranges=ranges)


def attach_eval_data(src: InputSource, path: Path) -> Any:
    """Use --eval-data as the inputs; returns its labels `y` (or None). A single-input model
    reads array `x`; a model with several inputs reads one array per input name (e.g.
    `input_ids`, `attention_mask`). Any sample count; dynamic dims take the data's sizes."""
    import numpy as np

    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as err:
        raise FixError(f"--eval-data {path}: cannot be read as .npz ({err})") from None
    y = arrays.get("y")
    if len(src.names) == 1:
        key = "x" if "x" in arrays else src.names[0]
        if key not in arrays:
            raise FixError(f"--eval-data {path}: no array named 'x' (or {src.names[0]!r})")
        xs = [arrays[key]]
    else:
        missing = [n for n in src.names if n not in arrays]
        if missing:
            raise FixError(
                f"--eval-data {path}: the model has inputs {', '.join(src.names)}; arrays missing: "
                f"{', '.join(missing)} (one array per input name, samples along axis 0)"
            )
        xs = [arrays[n] for n in src.names]
    count = len(xs[0])
    for name, x, shape in zip(src.names, xs, src.shapes, strict=True):
        if len(x) != count:
            raise FixError(f"--eval-data: {name} has {len(x)} samples, {src.names[0]} has {count}")
        if x.ndim - 1 != len(shape) or any(
            not isinstance(d, str) and d != got for d, got in zip(shape, x.shape[1:], strict=True)
        ):
            want = [d if not isinstance(d, str) else f"{d}(any)" for d in shape]
            raise FixError(
                f"--eval-data {name} has sample shape {list(x.shape[1:])}, the model expects {want}"
            )
        for d, got in zip(shape, x.shape[1:], strict=True):
            if isinstance(d, str):
                src.defaults[d] = int(got)
    if count == 0:
        raise FixError(f"--eval-data {path}: no samples")
    if y is not None and len(y) != count:
        raise FixError(f"--eval-data: {count} inputs but {len(y)} labels")
    src.data = tuple(x.astype(dt) for x, dt in zip(xs, src.dtypes, strict=True))
    src.synthetic, src.origin, src.make = False, "eval-data", None
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
