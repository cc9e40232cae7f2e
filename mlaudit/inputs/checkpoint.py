"""Checkpoint reading: the one gate every tensor read in mlaudit goes through.

Public API (used by checks and fixers; keep it stable):
- `read_checkpoint(path, rel) -> CheckpointInfo`: format, tensor metadata, plain metadata.
  Reads no tensor data beyond what the format needs for its header. Raises InputError.
- `iter_tensors(info) -> Iterator[(name, torch.Tensor)]`: tensors one at a time, lazily.
- `load_object(info) -> Any`: the whole deserialized object (torch.load weights_only=True).
Both loaders refuse anything the safety verdict did not clear.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, input_kind
from mlaudit.model import ArtifactSummary

DTYPE_BYTES = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16,
    "float8_e4m3fn": 1, "float8_e5m2": 1,
}  # fmt: skip


@dataclass(frozen=True)
class TensorInfo:
    """Metadata of one tensor, without its data.

    `name` is the dotted path inside the checkpoint (e.g. `state_dict.fc.weight`).
    `storage_key` identifies the underlying storage: tensors sharing it share bytes.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    storage_key: str | None = None
    storage_offset: int = 0
    storage_nbytes: int | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES.get(self.dtype, 4)


@dataclass(frozen=True)
class CheckpointInfo:
    """What is known about a checkpoint file before any tensor data is read."""

    path: Path
    rel: str
    format: str
    size_bytes: int
    tensors: tuple[TensorInfo, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    top_level_keys: tuple[str, ...] = ()
    safe_to_load: bool = False

    @property
    def parameters(self) -> int:
        """Elements over distinct storages views (shared tensors counted once)."""
        seen: set[tuple] = set()
        total = 0
        for t in self.tensors:
            key = (t.storage_key, t.storage_offset, t.shape) if t.storage_key else (t.name,)
            if key not in seen:
                seen.add(key)
                total += t.numel
        return total


def sniff_format(path: Path) -> str:
    """Format by content (magic bytes), not extension."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        raise InputError(path.name, "empty file")
    if head.startswith(b"version https://git-lfs"):
        return "lfs-pointer"
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) >= 8:
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if path.suffix == ".onnx":
        return "onnx"
    raise InputError(path.name, "unrecognized checkpoint format")


def _flatten(obj: Any, prefix: str, out: dict[str, Any], meta: dict[str, Any]) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, meta)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out, meta)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        meta[prefix] = obj


def _tensor_info(name: str, t: Any) -> TensorInfo:
    storage = t.untyped_storage()
    return TensorInfo(
        name=name,
        dtype=str(t.dtype).removeprefix("torch."),
        shape=tuple(t.shape),
        storage_key=str(storage.data_ptr()),
        storage_offset=t.storage_offset(),
        storage_nbytes=storage.nbytes(),
    )


def _torch_load(path: Path) -> Any:
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path.name, f"cannot be read safely: {first}") from None


def read_checkpoint(path: Path, rel: str) -> CheckpointInfo:
    """Read a checkpoint's format and tensor metadata. Raises InputError when it cannot."""
    try:
        fmt = sniff_format(path)
    except InputError as err:  # report the root-relative path, not the bare file name
        raise InputError(rel, err.reason) from None
    size = path.stat().st_size
    if fmt == "lfs-pointer":
        raise InputError(rel, "not scannable: Git LFS pointer (fetch the LFS object first)")
    if fmt == "safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
                tensors = []
                for name in fh.keys():
                    sl = fh.get_slice(name)
                    dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64",
                             "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
                             "U8": "uint8", "BOOL": "bool"}.get(sl.get_dtype(), sl.get_dtype().lower())
                    tensors.append(TensorInfo(name, dtype, tuple(sl.get_shape())))
        except Exception as err:  # safetensors raises its own error types
            raise InputError(rel, f"invalid safetensors file: {err}") from None
        return CheckpointInfo(path, rel, "safetensors", size, tuple(tensors), meta,
                              tuple(sorted({t.name.split('.')[0] for t in tensors})), True)
    if fmt in {"zip", "pickle"}:
        try:
            obj = _torch_load(path)
        except InputError as err:  # same: the path users see, so fingerprints stay unique
            raise InputError(rel, err.reason) from None
        flat: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        _flatten(obj, "", flat, meta)
        keys = tuple(str(k) for k in obj) if isinstance(obj, Mapping) else ()
        return CheckpointInfo(path, rel, "torch-zip" if fmt == "zip" else "torch-legacy", size,
                              tuple(_tensor_info(n, t) for n, t in flat.items()), meta, keys, True)
    raise InputError(rel, f"format {fmt!r} is not supported yet")


def load_object(info: CheckpointInfo) -> Any:
    """The whole checkpoint object; only for files the safety verdict cleared."""
    if not info.safe_to_load:
        raise InputError(info.rel, "refusing to load: the file did not pass the safety scan")
    if info.format == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(info.path))
    return _torch_load(info.path)


def iter_tensors(info: CheckpointInfo) -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs one at a time; names match `info.tensors`."""
    if info.format == "safetensors":
        from safetensors import safe_open

        with safe_open(str(info.path), framework="pt") as fh:
            for name in fh.keys():
                yield name, fh.get_tensor(name)
        return
    flat: dict[str, Any] = {}
    _flatten(load_object(info), "", flat, {})
    yield from flat.items()


@input_kind("checkpoint", scope="file", file_kinds=("checkpoint",))
def load_checkpoint(session, file) -> CheckpointInfo:
    info = read_checkpoint(file.path, file.rel)
    session.add_artifact(ArtifactSummary(file.rel, "checkpoint", {
        "format": info.format, "tensors": len(info.tensors), "parameters": info.parameters,
        "size_bytes": info.size_bytes,
    }))
    return info
