"""Tensor data without torch: numpy views of the storages a checkpoint file holds.

`iter_stored(info)` yields a `StoredTensor` per tensor of a file the static safety verdict
cleared, for every loadable format: torch zip (and Lightning) and legacy torch files (their
storages located from the pickle's storage records, never unpickled), safetensors and
sharded indexes (header offsets), numpy / npz, and ONNX (`onnx_proto`). A StoredTensor reads
its elements chunk by chunk with plain `readinto` calls into one reused buffer, so resident
memory stays near one chunk for contiguous tensors and near one storage for strided views.
Values come back in their storage dtype: bfloat16 as uint16 bit patterns and float8 as
uint8; `as_float32` turns a chunk of any float dtype into float32 through its bit layout.

Files holding tensors numpy cannot stand for (quantized, sparse, nested, tensor subclasses,
storage views of the pre-1.0 legacy format) are named by `needs_torch(info)`; the statistics
then go through torch when it is installed, and are reported inconclusive when it is not.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlaudit.inputs import InputError

if TYPE_CHECKING:
    from mlaudit.inputs.checkpoint.types import CheckpointInfo

# mlaudit (torch-style) dtype name -> little-endian numpy storage dtype
STORAGE = {
    "float64": "<f8", "float32": "<f4", "float16": "<f2", "bfloat16": "<u2",
    "int64": "<i8", "int32": "<i4", "int16": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
    "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "complex64": "<c8", "complex128": "<c16",
    "float8_e4m3fn": "u1", "float8_e5m2": "u1",
}  # fmt: skip
FLOATS = frozenset({"float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2"})
NUMPY_NAMES = {np.dtype(v).str: k for k, v in STORAGE.items() if k not in ("bfloat16",) and "8_" not in k}
# Pickle globals a torch file may name and still be read here (the rebuild functions of
# plain tensors and parameters, storage classes of numeric dtypes).
_PLAIN_REBUILDS = frozenset({"_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                             "_rebuild_parameter_with_state"})
_TORCH_FORMATS = ("torch-zip", "torch-legacy", "lightning")


def _fp8_e4m3fn_table() -> Any:
    """float32 value of each float8_e4m3fn bit pattern (1 sign, 4 exponent bits with bias 7,
    3 mantissa bits; no infinities, S.1111.111 is NaN)."""
    table = np.empty(256, dtype=np.float32)
    for b in range(256):
        sign = -1.0 if b & 0x80 else 1.0
        exp, man = (b >> 3) & 0xF, b & 0x7
        if exp == 0xF and man == 0x7:
            table[b] = np.nan
        elif exp == 0:
            table[b] = sign * man / 8 * 2.0**-6
        else:
            table[b] = sign * (1 + man / 8) * 2.0 ** (exp - 7)
    return table


_E4M3 = _fp8_e4m3fn_table()


def as_float32(chunk: Any, dtype: str) -> Any:
    """A chunk of a float tensor (in its storage dtype) as float32 values; float64 stays."""
    if dtype in ("float32", "float64"):
        return chunk
    if dtype == "float16":
        return chunk.astype(np.float32)
    if dtype == "bfloat16":  # bf16 is the upper half of an fp32
        return (chunk.astype(np.uint32) << 16).view(np.float32)
    if dtype == "float8_e5m2":  # e5m2 is the upper byte of an fp16
        return (chunk.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    if dtype == "float8_e4m3fn":
        return _E4M3[chunk]
    raise ValueError(f"not a float dtype: {dtype}")


@dataclass
class Storage:
    """Where one storage's bytes are: a byte range of a file, or bytes already in memory."""

    nbytes: int
    path: Path | None = None
    offset: int = 0  # in the file
    data: Any = None  # a numpy uint8 array (decompressed member, ONNX typed fields, npz)
    big_endian: bool = False


class Reader:
    """Reads byte ranges of storages through one open file and one reused buffer."""

    def __init__(self) -> None:
        self._files: dict[Path, Any] = {}
        self._buf = np.empty(1 << 21, dtype=np.uint8)

    def read(self, storage: Storage, start: int, nbytes: int, copy: bool = False) -> Any:
        """storage bytes [start, start+nbytes) as a uint8 array (valid until the next read
        unless `copy`)."""
        if start < 0 or start + nbytes > storage.nbytes:
            raise ValueError(f"bytes [{start}, {start + nbytes}) outside a {storage.nbytes}-byte storage")
        if storage.data is not None:
            view = storage.data[start:start + nbytes]
            return view.copy() if copy else view
        fh = self._files.get(storage.path)
        if fh is None:
            fh = self._files[storage.path] = open(storage.path, "rb")  # noqa: SIM115 - closed in close()
        out = np.empty(nbytes, dtype=np.uint8) if copy else None
        if out is None:
            if self._buf.size < nbytes:
                self._buf = np.empty(nbytes, dtype=np.uint8)
            out = self._buf[:nbytes]
        fh.seek(storage.offset + start)
        if fh.readinto(memoryview(out)) != nbytes:
            raise OSError("tensor data is truncated")
        return out

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


@dataclass
class StoredTensor:
    """One tensor: dtype, shape, strides (elements) and the storage it views."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    storage: Storage
    storage_key: str
    offset: int = 0  # elements of `dtype` into the storage
    stride: tuple[int, ...] | None = None  # None: C-contiguous
    reader: Reader | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return np.dtype(STORAGE[self.dtype]).itemsize

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def contiguous(self) -> bool:
        if self.stride is None:
            return True
        expect = 1
        for size, step in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if size != 1 and step != expect:
                return False
            expect *= size
        return True

    @property
    def alias_key(self) -> tuple:
        """Equal for two tensors that view the same elements of the same storage."""
        return (self.storage_key, self.offset, self.shape, self.stride, self.dtype)

    def _np_dtype(self) -> Any:
        dt = np.dtype(STORAGE[self.dtype])
        return dt.newbyteorder(">") if self.storage.big_endian and dt.itemsize > 1 else dt

    def _native(self, arr: Any) -> Any:
        return arr.astype(arr.dtype.newbyteorder("=")) if self.storage.big_endian else arr

    def read(self, start: int, count: int) -> Any:
        """Elements [start, start+count) of a contiguous tensor, 1-D, storage dtype
        (valid until the next read)."""
        size = self.itemsize
        raw = self.reader.read(self.storage, (self.offset + start) * size, count * size)
        return self._native(raw.view(self._np_dtype()))

    def full(self) -> Any:
        """The whole tensor as a fresh C-contiguous array in its storage dtype."""
        size = self.itemsize
        if self.contiguous:
            raw = self.reader.read(self.storage, self.offset * size, self.nbytes, copy=True)
            return self._native(raw.view(self._np_dtype())).reshape(self.shape)
        # A strided view: bounds-checked against its storage before numpy is told the strides
        # (as_strided itself would read past the buffer).
        if any(s < 0 for s in self.stride) or self.offset < 0:
            raise ValueError(f"tensor {self.name}: negative stride or offset")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        if (last + 1) * size > self.storage.nbytes:
            raise ValueError(f"tensor {self.name}: view reaches past its storage")
        span = self.reader.read(self.storage, self.offset * size, (last + 1 - self.offset) * size, copy=True)
        base = self._native(span.view(self._np_dtype()))
        view = np.lib.stride_tricks.as_strided(base, self.shape, tuple(s * size for s in self.stride),
                                               writeable=False)
        return np.ascontiguousarray(view)


class NeedsTorch(InputError):
    """The file's tensors cannot all be named from its pickle without loading it (e.g. a
    storage no tensor record references): only torch can compute their statistics."""


def needs_torch(info: CheckpointInfo) -> str | None:
    """Why this file's tensors can only be materialized by torch, or None."""
    if info.format not in _TORCH_FORMATS:
        return None
    from mlaudit.inputs.checkpoint.pickle_scan import STORAGE_DTYPES

    storages = {f"torch.{s}" for s, d in STORAGE_DTYPES.items() if d in STORAGE}
    for g in info.globals_used:
        module, _, name = g.rpartition(".")
        if module in ("torch._utils", "torch._tensor") and name not in _PLAIN_REBUILDS:
            return f"{g} (quantized, sparse, nested or subclassed tensors)"
        if name.endswith("Storage") and module == "torch" and g not in storages:
            return f"{g} (a storage type without a numpy equivalent)"
    for t in info.tensors:
        if t.dtype not in STORAGE:
            return f"tensor {t.name} of dtype {t.dtype}"
    return None


def iter_stored(info: CheckpointInfo) -> Iterator[StoredTensor]:
    """Every tensor of a cleared file, in the order torch would flatten it. Raises InputError
    for files this module cannot read (see `needs_torch`) and for damaged tensor data."""
    if not info.safe_to_load:
        raise InputError(info.rel, f"refusing to load: mlaudit never loads {info.format} files"
                         if not info.issues else "refusing to load: the safety scan flagged it")
    why = needs_torch(info)
    if why:
        raise NeedsTorch(info.rel, f"tensor statistics need torch for {why}")
    reader = Reader()
    try:
        if info.format in _TORCH_FORMATS:
            yield from _torch_file(info, reader)
        elif info.format == "safetensors":
            yield from _safetensors(info.path, "", reader)
        elif info.format == "safetensors-index":
            yield from _index(info, reader)
        elif info.format in ("numpy", "npz"):
            yield from _numpy(info, reader)
        elif info.format == "onnx":
            yield from _onnx(info, reader)
        else:
            raise InputError(info.rel, f"refusing to load: mlaudit never loads {info.format} files")
    finally:
        reader.close()


# --- torch files (zip and legacy) ---------------------------------------------------------


def _records(root: Any) -> list[tuple[str, str, tuple, tuple | None, str, int, str, int]]:
    """(name, dtype, shape, stride, storage key, offset, storage dtype, storage numel) of
    every tensor in a symbolic torch object, in flatten order."""
    from mlaudit.inputs.checkpoint import pickle_scan as ps

    out = []
    for name, leaf in ps.walk_tensors(root):
        t = ps.tensor_of(leaf)
        if t is None:
            continue
        dtype, shape, (key, sdtype, numel), offset = t
        call = leaf
        while call.func.name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            call = call.args[0]
        stride = ps._as_tuple(call.args[3]) if len(call.args) > 3 else None
        if stride is not None and not all(isinstance(s, int) for s in stride):
            stride = None
        out.append((name, dtype, shape, tuple(stride) if stride is not None else None, key, offset,
                    sdtype, numel))
    return out


def _torch_file(info: CheckpointInfo, reader: Reader) -> Iterator[StoredTensor]:
    from mlaudit.inputs.checkpoint import pickle_scan as ps
    from mlaudit.inputs.checkpoint.zipread import TolerantZip

    with open(info.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        storages: dict[str, Storage] = {}
        if buf[:2] == b"PK":
            z = TolerantZip(buf)
            pkl = next(m for m in z.members if m.name.endswith("data.pkl") and m.name.count("/") <= 1)
            prefix = pkl.name[: -len("data.pkl")]
            root = ps.scan_bytes(z.read(pkl, 1 << 30), pkl.name).root
            members = {m.name: m for m in z.members}
            order = members.get(prefix + "byteorder")
            big = order is not None and z.read(order, 16).strip() == b"big"
            records = _records(root)
            referenced = {r[4] for r in records}
            stored = {m.name[len(prefix) + 5:] for m in z.members
                      if m.name.startswith(prefix + "data/") and not m.is_dir}
            if stored - referenced:
                # storages torch would build tensors from that the static records do not name
                raise NeedsTorch(info.rel, f"{len(stored - referenced)} storage(s) no tensor record names")
            for rec in records:
                key = rec[4]
                if key in storages:
                    continue
                m = members.get(f"{prefix}data/{key}")
                if m is None:
                    raise InputError(info.rel, f"storage {key!r} is missing from the archive")
                if m.method == 0:
                    storages[key] = Storage(m.size, info.path, z.data_offset(m), big_endian=big)
                else:  # compressed storages (torch never writes them): inflated into memory
                    data = np.frombuffer(z.read(m, 1 << 34), dtype=np.uint8)
                    storages[key] = Storage(data.size, data=data, big_endian=big)
        else:
            stream = buf
            stream.seek(0)
            results = [ps.scan_pickle(stream, "") for _ in range(5)]  # magic .. storage keys
            root = results[3].root
            keys = results[4].root
            keys = keys.items if isinstance(keys, ps.SList) else keys
            records = _records(root)
            sizes = {r[4]: DTYPE_SIZE.get(r[6], 1) for r in records}
            unnamed = [str(k) for k in keys if str(k) not in sizes]
            if unnamed:  # their element size (and so the next storage's offset) is unknown
                raise NeedsTorch(info.rel, f"{len(unnamed)} storage(s) no tensor record names")
            pos = stream.tell()
            for key in keys:
                if pos + 8 > len(buf):
                    raise InputError(info.rel, "legacy storages are truncated")
                (numel,) = struct.unpack("<q", buf[pos:pos + 8])
                nbytes = numel * sizes.get(str(key), 1)
                if numel < 0 or pos + 8 + nbytes > len(buf):
                    raise InputError(info.rel, f"legacy storage {key!r} is truncated")
                storages[str(key)] = Storage(nbytes, info.path, pos + 8)
                pos += 8 + nbytes
    for name, dtype, shape, stride, key, offset, _sdtype, _numel in records:
        storage = storages.get(key)
        if storage is None:
            raise InputError(info.rel, f"storage {key!r} of {name} is missing")
        yield StoredTensor(name, dtype, tuple(shape), storage, key, offset, stride, reader)


DTYPE_SIZE = {k: np.dtype(v).itemsize for k, v in STORAGE.items()}


# --- safetensors ----------------------------------------------------------------------------

_ST = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
       "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "U16": "uint16",
       "U32": "uint32", "U64": "uint64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}  # fmt: skip


def _safetensors(path: Path, prefix: str, reader: Reader,
                 only: set[str] | None = None) -> Iterator[StoredTensor]:
    """Tensors of one safetensors file in data order (like the torch path's reader)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise InputError(str(path.name), "truncated safetensors header")
        (hlen,) = struct.unpack("<Q", head)
        try:
            header = json.loads(fh.read(hlen))
        except (ValueError, UnicodeDecodeError):
            raise InputError(str(path.name), "invalid safetensors header") from None
    base = 8 + hlen
    entries = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda kv: kv[1]["data_offsets"][0])
    for name, entry in entries:
        if only is not None and name not in only:
            continue
        begin, end = entry["data_offsets"]
        dtype = _ST.get(entry["dtype"])
        shape = tuple(entry["shape"])
        if dtype is None or math.prod(shape) * DTYPE_SIZE[dtype] != end - begin:
            dtype, shape = "uint8", (end - begin,)  # unknown dtype: raw bytes only
        yield StoredTensor(name, dtype, shape, Storage(end - begin, path, base + begin),
                           f"{prefix}:{name}", 0, None, reader)


def _index(info: CheckpointInfo, reader: Reader) -> Iterator[StoredTensor]:
    by_shard: dict[str, set[str]] = {}
    for t in info.tensors:
        by_shard.setdefault((t.storage_key or ":").split(":", 1)[0], set()).add(t.name)
    for shard, names in by_shard.items():
        # in the index's order per shard, like the torch path (safe_open per shard)
        tensors = {t.name: t for t in _safetensors(info.path.parent / shard, shard, reader, names)}
        for t in info.tensors:
            if t.name in tensors and (t.storage_key or ":").split(":", 1)[0] == shard:
                yield tensors[t.name]


# --- numpy --------------------------------------------------------------------------------


def _numpy_dtype(rel: str, name: str, dt: Any) -> tuple[str, bool]:
    key = dt.newbyteorder("<").str if dt.byteorder == ">" else dt.str
    mapped = NUMPY_NAMES.get(key.replace("|", "<") if key[0] == "|" and dt.itemsize > 1 else key)
    if mapped is None:
        raise InputError(rel, f"cannot read tensors: array {name} has dtype {dt} (not a tensor dtype)")
    return mapped, dt.byteorder == ">"


def _numpy(info: CheckpointInfo, reader: Reader) -> Iterator[StoredTensor]:
    if info.format == "numpy":
        arr = np.load(info.path, allow_pickle=False, mmap_mode="r")
        name = info.tensors[0].name
        dtype, big = _numpy_dtype(info.rel, name, arr.dtype)
        stride = None if arr.flags.c_contiguous else _fortran_strides(arr.shape)
        storage = Storage(arr.nbytes, info.path, arr.offset, big_endian=big)
        del arr
        yield StoredTensor(name, dtype, tuple(info.tensors[0].shape), storage, name, 0, stride, reader)
        return
    with np.load(info.path, allow_pickle=False) as archive:
        for t in info.tensors:
            loaded = archive[t.name]
            arr = np.ascontiguousarray(loaded).reshape(loaded.shape)  # (0-d arrays stay 0-d)
            dtype, big = _numpy_dtype(info.rel, t.name, arr.dtype)
            data = arr.reshape(-1).view(np.uint8)
            yield StoredTensor(t.name, dtype, arr.shape, Storage(data.size, data=data, big_endian=big),
                               f"npz:{t.name}", 0, None, reader)


def _fortran_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, step = [], 1
    for n in shape:
        out.append(step)
        step *= n
    return tuple(out)


# --- ONNX ---------------------------------------------------------------------------------


def _onnx(info: CheckpointInfo, reader: Reader) -> Iterator[StoredTensor]:
    from mlaudit.inputs.checkpoint import onnx_proto
    from mlaudit.inputs.checkpoint.types import escapes_dir

    if any(escapes_dir(info.path.parent, loc) for loc in info.external_data):
        raise InputError(info.rel, "refusing to load: external data outside the model directory")
    try:
        # the whole file, as the onnx package reads it (a protobuf is at most 2 GB); the
        # arrays below are views into it
        model = onnx_proto.parse_model(info.path.read_bytes())
        wanted = {t.name for t in info.tensors}
        for name, t in onnx_proto.walk_tensors(model.graph) if model.graph else ():
            if name not in wanted or t.data_type == onnx_proto.STRING:
                continue
            arr = onnx_proto.to_array(model, t, str(info.path.parent))
            data = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
            yield StoredTensor(name, t.dtype, tuple(t.dims), Storage(data.size, data=data),
                               f"onnx:{name}", 0, None, reader)
    except (onnx_proto.ProtoError, ValueError, OSError) as err:
        raise InputError(info.rel, f"cannot read tensors: {err}") from None


