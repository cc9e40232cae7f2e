"""One seeded mutant per class of false "clean" the 10,000-mutant campaign found (issue 11):
each is built here from a benign file this test writes, the format's own loader is shown to
refuse it, and mlaudit must not call it clean. The classes, not the campaign's instances:
zip flag bits (central directory and local header), a multi-disk zip64 locator, npz CRC
errors and members that are not arrays, directory-named members holding bytes, .npy headers
numpy rejects, a quantized tensor on a float storage, unhashable dict keys and set items,
storage references torch cannot unpack, undecodable records; for ONNX (checked against
onnx.load and every tensor value's bytes) corrupt sub-messages and packed fields, names that
are not UTF-8, values whose bytes disagree with their shape; for TorchScript (checked against
torch.jit.load) opcodes its unpickler lacks, constants that are no tuple, members no archive
holds, code members that were renamed or altered, a member marked as a DOS directory."""

from __future__ import annotations

import io
import pickletools
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fixtures.fuzz import (
    _rebuild_zip,
    agrees,
    graph_seeds,
    mlaudit_verdict,
    reference_listing,
    static_listing,
)

# --- benign files ------------------------------------------------------------------------------


def _torch_zip(path: Path, obj: object | None = None) -> bytes:
    import torch

    torch.manual_seed(0)
    torch.save(obj if obj is not None else {"w": torch.randn(3, 2), "b": torch.zeros(3)}, path)
    return path.read_bytes()


def _legacy(path: Path) -> bytes:
    import torch

    torch.manual_seed(0)
    torch.save({"w": torch.randn(3, 2)}, path, _use_new_zipfile_serialization=False)
    return path.read_bytes()


def _npz(path: Path) -> bytes:
    np.savez(path, a=np.arange(3.0), b=np.ones((2, 2), dtype=np.int64))
    return path.read_bytes()


def _npy(path: Path) -> bytes:
    np.save(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    return path.read_bytes()


# --- byte surgery ------------------------------------------------------------------------------


def _central(data: bytes, name: str) -> int:
    """Offset of `name`'s central-directory entry."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        nlen = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + nlen].decode() == name:
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not in the central directory")


def _local(data: bytes, name: str) -> int:
    return struct.unpack_from("<I", data, _central(data, name) + 42)[0]


def _set_flags(data: bytes, name: str, bits: int, where: str) -> bytes:
    out = bytearray(data)
    at = _central(data, name) + 8 if where == "central" else _local(data, name) + 6
    struct.pack_into("<H", out, at, struct.unpack_from("<H", out, at)[0] | bits)
    return bytes(out)


def _member(data: bytes, suffix: str) -> str:
    return next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith(suffix))


def _replace_member(data: bytes, suffix: str, edit: Callable[[bytes], bytes]) -> bytes:
    """Rewrite one member (valid CRCs and offsets: only its content changes)."""
    z = zipfile.ZipFile(io.BytesIO(data))
    members = [(i.filename, z.read(i)) for i in z.infolist()]
    return _rebuild_zip([(n, edit(b) if n.endswith(suffix) else b) for n, b in members])


def _once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1, old
    return data.replace(old, new, 1)


def _legacy_view_metadata(data: bytes) -> bytes:
    """Replace the None view metadata of a legacy storage reference by {} (same length)."""
    stream = io.BytesIO(data)
    for _ in range(3):  # magic, protocol, sys_info: the main pickle follows
        for _op in pickletools.genops(stream):
            pass
    ops = list(pickletools.genops(stream))
    for (a, _, at), (b, _, _) in zip(ops, ops[1:], strict=False):
        if (a.name, b.name) == ("NONE", "TUPLE"):  # ('storage', type, key, location, numel, None)
            return data[:at] + b"}" + data[at + 1 :]
    raise AssertionError("no legacy storage reference found")


def _flag(suffix: str, bits: int, where: str = "central") -> Callable[[bytes], bytes]:
    return lambda d: _set_flags(d, _member(d, suffix), bits, where)


def _multi_disk(d: bytes) -> bytes:
    at = d.rfind(b"PK\x06\x07") + 16  # the zip64 locator's total-disks field
    return d[:at] + struct.pack("<I", 2) + d[at + 4 :]


def _flip_in_member(name: str, offset: int) -> Callable[[bytes], bytes]:
    return lambda d: d[: _local(d, name) + offset] + b"\x7f" + d[_local(d, name) + offset + 1 :]


def _in_member(suffix: str, old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda d: _replace_member(d, suffix, lambda b: _once(b, old, new))


def _graph(name: str) -> Callable[[Path], bytes]:
    def write(path: Path) -> bytes:
        seeds = {s.path.name: s.path for s in graph_seeds(path.parent / "graphs")}
        path.write_bytes(seeds[name].read_bytes())
        return path.read_bytes()

    return write


def _onnx_field(path: tuple[int, ...], edit: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """Rewrite the payload of a nested length-delimited field (field numbers from the
    ModelProto down, first occurrence each) and fix the lengths of the enclosing fields."""

    def varint(v: int) -> bytes:
        out = b""
        while True:
            b, v = v & 0x7F, v >> 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out

    def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value, pos

    def fields(buf: bytes):
        pos = 0
        while pos < len(buf):
            start = pos
            key, pos = read_varint(buf, pos)
            wire = key & 7
            if wire == 0:
                _, pos = read_varint(buf, pos)
                yield start, key >> 3, wire, None, pos
            elif wire == 2:
                length, pos = read_varint(buf, pos)
                yield start, key >> 3, wire, (pos, pos + length), pos + length
                pos += length
            else:
                pos += 8 if wire == 1 else 4
                yield start, key >> 3, wire, None, pos

    def rewrite(buf: bytes, numbers: tuple[int, ...]) -> bytes:
        for start, number, wire, span, end in fields(buf):
            if number == numbers[0] and wire == 2:
                inner = buf[span[0] : span[1]]
                new = edit(inner) if len(numbers) == 1 else rewrite(inner, numbers[1:])
                return buf[:start] + varint(number << 3 | 2) + varint(len(new)) + new + buf[end:]
        raise AssertionError(f"field {numbers[0]} not found")

    return lambda d: rewrite(d, path)


def _dims_plus_one(tensor: bytes) -> bytes:
    """A TensorProto's first dims entry (field 1, varint) plus one: its bytes no longer fit."""
    assert tensor[0] == 0x08
    return tensor[:1] + bytes([tensor[1] + 1]) + tensor[2:]


def _dos_directory(suffix: str) -> Callable[[bytes], bytes]:
    """Set the MS-DOS directory bit of a member's external attributes (central directory)."""
    def edit(d: bytes) -> bytes:
        at = _central(d, _member(d, suffix)) + 38
        return d[:at] + b"\x10" + d[at + 1 :]

    return edit


TINY_ONNX, TINY_JIT = _graph("tiny.onnx"), _graph("tiny.jit")


def _declared_size_plus_one(suffix: str) -> Callable[[bytes], bytes]:
    """The central directory declares one byte more for a (deflated) member than it inflates to."""

    def edit(d: bytes) -> bytes:
        at = _central(d, _member(d, suffix)) + 24
        out = bytearray(d)
        struct.pack_into("<I", out, at, struct.unpack_from("<I", d, at)[0] + 1)
        return bytes(out)

    return edit


def _root_class_replaced(pickle: bytes) -> bytes:
    """The first GLOBAL (the root module's class; its name is mangled when scripted again)
    replaced by collections.OrderedDict."""
    return re.sub(rb"c__torch__[^\n]*\n[^\n]*\n", b"ccollections\nOrderedDict\n", pickle, count=1)


def _constant_without_value(d: bytes) -> bytes:
    """The first Constant node keeps its TENSOR-typed `value` attribute but loses the tensor."""
    import onnx

    model = onnx.load_from_string(d)
    node = next(n for n in model.graph.node if n.op_type == "Constant")
    node.attribute[0].ClearField("t")
    return model.SerializeToString()

# (name, suffix of the file, writer, mutation, loader kind)
CASES: dict[str, tuple[str, Callable, Callable[[bytes], bytes], str]] = {
    # zip flag bits: miniz reads them from the central directory, Python's zipfile from both
    "central-patched-data-bit": (".pt", _torch_zip, _flag("data.pkl", 0x20), "torch"),
    "central-strong-encryption-bit": (".pt", _torch_zip, _flag("data.pkl", 0x40), "torch"),
    "central-masked-header-bit": (".pt", _torch_zip, _flag("data/0", 0x2000), "torch"),
    "npz-central-patched-data-bit": (".npz", _npz, _flag("a.npy", 0x20), "numpy"),
    "npz-central-encryption-bit": (".npz", _npz, _flag("b.npy", 0x01), "numpy"),
    "zip64-locator-multi-disk": (".pt", _torch_zip, _multi_disk, "torch"),
    # npz: numpy reads every member through zipfile, which checks CRCs
    "npz-crc-in-array-data": (".npz", _npz, _flip_in_member("b.npy", 200), "numpy"),
    "npz-member-not-an-array": (".npz", _npz, _in_member("a.npy", b"\x93NUMPY", b"bytes!!"), "numpy"),
    "npz-member-named-as-directory": (".npz", _npz, lambda d: d.replace(b"b.npy", b"b.np/"), "numpy"),
    # .npy headers numpy's read_array_header rejects
    "npy-header-wrong-key": (".npy", _npy, lambda d: _once(d, b"fortran_order", b"fortran_Xrder"), "numpy"),
    "npy-header-extra-key": (".npy", _npy, lambda d: _once(d, b"(2, 3), }", b"(2, 3),'x':1}"), "numpy"),
    "npy-header-order-not-bool": (".npy", _npy, lambda d: _once(d, b"False", b"0    "), "numpy"),
    "npy-minor-version": (".npy", _npy, lambda d: d[:7] + b"\x01" + d[8:], "numpy"),
    # torch pickles
    "quantized-tensor-on-float-storage": (".pt", lambda p: _torch_zip(p, _quantized()),
                                          _in_member("data.pkl", b"QInt8Storage", b"FloatStorage"), "torch"),
    "numpy-helper-called-with-too-few-arguments": (
        ".pt", lambda p: _torch_zip(p, _with_numpy_scalar()),
        _in_member("data.pkl", b"multiarray\nscalar", b"multiarray\n_reconstruct"), "torch"),
    "set-as-dict-key": (".pt", _torch_zip, _in_member("data.pkl", b"X\x01\x00\x00\x00w", b"\x8f"), "torch"),
    "legacy-view-metadata-not-a-tuple": (".pth", _legacy, _legacy_view_metadata, "torch"),
    "storage-reference-extra-field": (".pt", _torch_zip, _in_member("data.pkl", b"K\x06t", b"K\x06Nt"),
                                      "torch"),
    "serialization-id-not-utf8": (".pt", _torch_zip, lambda d: _replace_member(
        d, ".data/serialization_id", lambda b: b"\xff" + b[1:]), "torch"),
    "member-marked-as-dos-directory": (".pt", _torch_zip, _dos_directory("data.pkl"), "torch"),
    # ONNX: graph (7) > input value info (11), initializer (5), node (1) > output (2)
    "onnx-corrupt-value-info": (".onnx", TINY_ONNX, _onnx_field((7, 11), lambda b: b + b"\x12\x05\x0a"),
                                "onnx"),
    "onnx-packed-dims-truncated": (".onnx", TINY_ONNX, _onnx_field((7, 5), lambda b: b"\x0a\x01\xff" + b),
                                   "onnx"),
    "onnx-name-not-utf8": (".onnx", TINY_ONNX, _onnx_field((7, 1, 2), lambda b: b"\xff" + b[1:]), "onnx"),
    "onnx-initializer-bytes-disagree-with-dims": (".onnx", TINY_ONNX, _onnx_field((7, 5), _dims_plus_one),
                                                  "onnx"),
    "onnx-tensor-attribute-without-a-tensor": (".onnx", TINY_ONNX, _constant_without_value, "onnx"),
    # TorchScript: torch.jit.load compiles the code members and unpickles with its own unpickler
    "torchscript-opcode-its-unpickler-lacks": (".jit", TINY_JIT, lambda d: _replace_member(
        d, "constants.pkl", lambda b: b"\x80\x02\x8f."), "torchscript"),
    "torchscript-constants-not-a-tuple": (".jit", TINY_JIT, lambda d: _replace_member(
        d, "constants.pkl", lambda b: b"\x80\x02\x88."), "torchscript"),
    "torchscript-code-folder-renamed": (".jit", TINY_JIT, lambda d: d.replace(
        b"/code/__torch__/torch/nn/functional.py", b"/co_e/__torch__/torch/nn/functional.py"), "torchscript"),
    "torchscript-code-module-renamed": (".jit", TINY_JIT, lambda d: d.replace(
        b"torch/nn/functional.py", b"torch/nn/functionaX.py"), "torchscript"),
    "torchscript-state-attribute-undeclared": (".jit", TINY_JIT,
        _in_member("data.pkl", b"training", b"trainxng"), "torchscript"),
    "torchscript-tensor-rebuild-arguments": (".jit", TINY_JIT,
        _in_member("data.pkl", b"K\x00(K\x03t(K\x01t", b"K\x00(tK\x03(K\x01t"),
        "torchscript"),
    "torchscript-code-module-renamed-under-its-package": (".jit", TINY_JIT, lambda d: d.replace(
        b"torch/nn/modules/activation.py", b"torch/nn/modules/activatioX.py"), "torchscript"),
    "torchscript-root-not-a-module": (".jit", TINY_JIT,
        lambda d: _replace_member(d, "data.pkl", _root_class_replaced), "torchscript"),
    "torchscript-compressed-member-size": (".jit", TINY_JIT, _declared_size_plus_one(".debug_pkl"),
                                           "torchscript"),
    "torchscript-code-altered": (".jit", TINY_JIT, lambda d: d.replace(b"torch.relu", b"torch.reLu", 1),
                                 "torchscript"),
}  # fmt: skip


def _with_numpy_scalar() -> object:
    import torch

    return {"w": torch.zeros(3), "step": np.float64(2.0)}


def _quantized() -> object:
    import torch

    return {"q": torch.quantize_per_tensor(torch.tensor([0.5, 1.0, -1.0]), 0.1, 0, torch.qint8)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_mutant_class_is_never_clean(name, tmp_path):
    suffix, write, mutate, kind = CASES[name]
    benign = tmp_path / f"benign{suffix}"
    original = write(benign)
    assert mlaudit_verdict(benign, tmp_path / "r.json").kind == "clean", "the benign file must be clean"
    mutant = tmp_path / f"mutant{suffix}"
    mutant.write_bytes(mutate(original))
    assert mutant.read_bytes() != original
    # a trap: the loader refuses the mutant, or reads other tensors than the static listing
    try:
        ref = reference_listing(mutant, kind)
    except Exception:  # the loader's own refusal, whatever its type
        ref = None
    assert ref is None or agrees(kind, static_listing(mutant), ref), f"the loader reads {ref}: no trap"
    verdict = mlaudit_verdict(mutant, tmp_path / "r.json")
    assert verdict.kind in ("inconclusive", "refused", "unsafe"), (verdict.kind, verdict.detail)
