"""ONNX models read straight from the protobuf wire format, without importing `onnx`.

`import onnx` costs about a second (it pulls in its reference implementation, numpy helpers
and the full protobuf runtime); a scan only needs the graph's structure, the initializers'
names, types and shapes, the metadata and the tensor bytes. This module decodes exactly the
fields it needs from the bytes (an mmap is fine: nothing is copied up front) and skips every
other field by its wire type, as protobuf does. Anything that does not decode (a truncated
varint, a length past the end, an invalid wire type) raises `ProtoError` with one line.

Field numbers are those of onnx.proto (proto2), checked against `onnx.onnx_ml_pb2` by tests.
Tensor values are produced as numpy arrays with the same dtype and values as
`onnx.numpy_helper.to_array` (float16/bfloat16/float8 held as their bit patterns in
int32_data are re-packed into 16/8-bit storage).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 64  # nested graphs (If/Loop bodies); protobuf's own recursion limit is 100

# TensorProto.DataType -> (name used in mlaudit, numpy dtype of the storage, bytes per element)
DATA_TYPES: dict[int, tuple[str, str, int]] = {
    1: ("float32", "<f4", 4), 2: ("uint8", "u1", 1), 3: ("int8", "i1", 1), 4: ("uint16", "<u2", 2),
    5: ("int16", "<i2", 2), 6: ("int32", "<i4", 4), 7: ("int64", "<i8", 8), 9: ("bool", "?", 1),
    10: ("float16", "<f2", 2), 11: ("float64", "<f8", 8), 12: ("uint32", "<u4", 4),
    13: ("uint64", "<u8", 8), 14: ("complex64", "<c8", 8), 15: ("complex128", "<c16", 16),
    16: ("bfloat16", "<u2", 2), 17: ("float8_e4m3fn", "u1", 1), 19: ("float8_e5m2", "u1", 1),
}  # fmt: skip
STRING = 8
ATTRIBUTE_TENSOR = 4  # AttributeProto.TENSOR
EXTERNAL = 1  # TensorProto.DataLocation


class ProtoError(Exception):
    """The bytes are not a well-formed protobuf message (one-line message)."""


# --- wire format -----------------------------------------------------------------------


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")


def _fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of the message in buf[start:end]:
    an int for varints and fixed-width fields, a (begin, end) span for length-delimited ones."""
    pos = start
    value: int | tuple[int, int]
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtoError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
        elif wire == 1:
            if pos + 8 > end:
                raise ProtoError("truncated fixed64 field")
            value = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise ProtoError(f"field {number} claims {length:,} bytes, {end - pos:,} remain")
            value = (pos, pos + length)
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise ProtoError("truncated fixed32 field")
            value = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        elif wire == 3:  # a (deprecated) group: skipped up to its matching end tag
            pos = _skip_group(buf, pos, end, number)
            continue
        else:
            raise ProtoError(f"invalid wire type {wire}")
        yield number, wire, value


def _skip_group(buf: Any, pos: int, end: int, number: int) -> int:
    depth = 1
    while pos < end:
        key, pos = _varint(buf, pos, end)
        n, wire = key >> 3, key & 7
        if wire == 4:
            depth -= 1
            if depth == 0:
                if n != number:
                    raise ProtoError("mismatched group end")
                return pos
            continue
        if wire == 3:
            depth += 1
        elif wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ProtoError(f"invalid wire type {wire}")
    raise ProtoError("unterminated group")


def _text(buf: Any, span: tuple[int, int]) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        # onnx.load hands such a name over as raw bytes, and ONNX Runtime wires the graph by
        # those bytes: a listing by a decoded name would not be the model's
        raise ProtoError("a name or string that is not UTF-8 (loaders keep its raw bytes)") from None


WIRE_DEPTH = 100  # the protobuf runtime's recursion limit


def check_wire(buf: Any, start: int, end: int, message: str = "ModelProto", depth: int = 0) -> None:
    """Refuse what `onnx.load`'s protobuf parser refuses, in the whole message and not only
    in the fields a scan reads: every sub-message of a known field must itself parse, packed
    repeated scalars must hold whole varints or whole fixed-width values. Unknown fields and
    fields with another wire type than their declaration are skipped, as protobuf does."""
    from mlaudit.inputs.checkpoint.onnx_schema import SCHEMA

    if depth > WIRE_DEPTH:
        raise ProtoError(f"messages nested deeper than {WIRE_DEPTH} levels")
    fields = SCHEMA.get(message, {})
    for number, wire, value in _fields(buf, start, end):
        spec = fields.get(number)
        if spec is None or wire != 2:
            continue
        kind, sub = spec
        if kind[0] == "m" and sub is not None:
            check_wire(buf, value[0], value[1], sub, depth + 1)
        elif kind == "v*":
            pos = value[0]
            while pos < value[1]:
                _, pos = _varint(buf, pos, value[1])
        elif kind in ("4*", "8*") and (value[1] - value[0]) % int(kind[0]):
            raise ProtoError(f"packed field {number} of {message} is not a whole number of values")


def _entry(buf: Any, span: tuple[int, int]) -> tuple[str, str]:
    """A StringStringEntryProto: (key, value)."""
    key = val = ""
    for n, w, v in _fields(buf, *span):
        if n == 1 and w == 2:
            key = _text(buf, v)
        elif n == 2 and w == 2:
            val = _text(buf, v)
    return key, val


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _ints(buf: Any, wire: int, value: Any, out: list[int], signed: bool = True) -> None:
    """A repeated integer field, packed (one span of varints) or not (one varint)."""
    if wire == 2:
        pos, end = value
        while pos < end:
            v, pos = _varint(buf, pos, end)
            out.append(_signed64(v) if signed else v)
    elif wire == 0:
        out.append(_signed64(value) if signed else value)
    else:
        raise ProtoError("integer field with a non-integer wire type")


# --- messages -----------------------------------------------------------------------------


@dataclass
class Tensor:
    """A TensorProto: metadata plus where its values are (spans into the model bytes)."""

    name: str = ""
    data_type: int = 0
    dims: list[int] = field(default_factory=list)
    raw: tuple[int, int] | None = None  # raw_data span
    typed: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)  # field -> [(wire, value)]
    data_location: int = 0
    external_data: dict[str, str] = field(default_factory=dict)

    @property
    def dtype(self) -> str:
        """mlaudit's dtype name (`onnx-N` for types it has no name for)."""
        known = DATA_TYPES.get(self.data_type)
        return known[0] if known else ("string" if self.data_type == STRING else f"onnx-{self.data_type}")


@dataclass
class Attribute:
    name: str = ""
    t: Tensor | None = None
    tensors: list[Tensor] = field(default_factory=list)
    type: int = 0  # AttributeProto.AttributeType (4: TENSOR)
    g: Graph | None = None
    graphs: list[Graph] = field(default_factory=list)


@dataclass
class Node:
    name: str = ""
    op_type: str = ""
    domain: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)


@dataclass
class Graph:
    name: str = ""
    nodes: list[Node] = field(default_factory=list)
    initializers: list[Tensor] = field(default_factory=list)


@dataclass
class Model:
    """The parts of a ModelProto a scan uses. `buf` is the bytes the spans point into."""

    buf: Any
    ir_version: int = 0
    producer_name: str = ""
    opset_import: list[tuple[str, int]] = field(default_factory=list)
    graph: Graph | None = None
    metadata_props: dict[str, str] = field(default_factory=dict)


def _tensor(buf: Any, span: tuple[int, int], t: Tensor | None = None) -> Tensor:
    t = t or Tensor()
    for number, wire, value in _fields(buf, *span):
        if number == 1:
            _ints(buf, wire, value, t.dims)
        elif number == 2 and wire == 0:
            t.data_type = value
        elif number == 8 and wire == 2:
            t.name = _text(buf, value)
        elif number == 9 and wire == 2:
            t.raw = value
        elif number == 14 and wire == 0:
            t.data_location = value
        elif number == 13 and wire == 2:
            key, val = _entry(buf, value)
            t.external_data[key] = val
        elif number in (4, 5, 6, 7, 10, 11):  # float, int32, string, int64, double, uint64 data
            t.typed.setdefault(number, []).append((wire, value))
    return t


def _graph(buf: Any, span: tuple[int, int], depth: int, g: Graph | None = None) -> Graph:
    if depth > MAX_DEPTH:
        raise ProtoError(f"graphs nested deeper than {MAX_DEPTH} levels")
    g = g or Graph()
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            g.nodes.append(_node(buf, value, depth))
        elif number == 2:
            g.name = _text(buf, value)
        elif number == 5:
            g.initializers.append(_tensor(buf, value))
    return g


def _node(buf: Any, span: tuple[int, int], depth: int) -> Node:
    n = Node()
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            n.inputs.append(_text(buf, value))
        elif number == 2:
            n.outputs.append(_text(buf, value))
        elif number == 3:
            n.name = _text(buf, value)
        elif number == 4:
            n.op_type = _text(buf, value)
        elif number == 7:
            n.domain = _text(buf, value)
        elif number == 5:
            n.attributes.append(_attribute(buf, value, depth))
    return n


def _attribute(buf: Any, span: tuple[int, int], depth: int) -> Attribute:
    a = Attribute()
    for number, wire, value in _fields(buf, *span):
        if number == 20 and wire == 0:
            a.type = value
        if wire != 2:
            continue
        if number == 1:
            a.name = _text(buf, value)
        elif number == 5:
            a.t = _tensor(buf, value, a.t)
        elif number == 10:
            a.tensors.append(_tensor(buf, value))
        elif number == 6:
            a.g = _graph(buf, value, depth + 1, a.g)
        elif number == 11:
            a.graphs.append(_graph(buf, value, depth + 1))
    return a


def parse_model(buf: Any) -> Model:
    """Decode a ModelProto from `buf` (bytes or an mmap). Raises ProtoError."""
    check_wire(buf, 0, len(buf))
    m = Model(buf)
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number == 1 and wire == 0:
            m.ir_version = value
        elif number == 2 and wire == 2:
            m.producer_name = _text(buf, value)
        elif number == 7 and wire == 2:
            m.graph = _graph(buf, value, 0, m.graph)  # repeated singular fields merge
        elif number == 8 and wire == 2:
            domain, version = "", 0
            for n, w, v in _fields(buf, *value):
                if n == 1 and w == 2:
                    domain = _text(buf, v)
                elif n == 2 and w == 0:
                    version = _signed64(v)
            m.opset_import.append((domain, version))
        elif number == 14 and wire == 2:
            key, val = _entry(buf, value)
            m.metadata_props[key] = val
    return m


# --- tensors ----------------------------------------------------------------------------


def walk_tensors(graph: Graph, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) for every initializer and Constant value, subgraphs included, named
    like mlaudit's checkpoint reader (`<node>.<attr>.<initializer>` inside subgraphs)."""
    for init in graph.initializers:
        yield prefix + init.name, init
    for node in graph.nodes:
        for attr in node.attributes:
            if node.op_type == "Constant" and attr.name == "value" and attr.t is not None:
                yield prefix + (node.outputs[0] if node.outputs else node.name), attr.t
            if attr.g is not None:
                yield from walk_tensors(attr.g, f"{prefix}{node.name or node.op_type}.{attr.name}.")
            for i, g in enumerate(attr.graphs):
                yield from walk_tensors(g, f"{prefix}{node.name or node.op_type}.{attr.name}{i}.")


def all_values(graph: Graph) -> Iterator[Tensor]:
    """Every tensor value of the graph a loader reads (initializers and every tensor attribute,
    subgraphs included), whether or not the listing names it."""
    yield from graph.initializers
    for node in graph.nodes:
        for attr in node.attributes:
            if attr.t is not None:
                yield attr.t
            elif attr.type == ATTRIBUTE_TENSOR:
                yield Tensor(name=f"{node.name or node.op_type}.{attr.name}")  # declared, absent
            yield from attr.tensors
            if attr.g is not None:
                yield from all_values(attr.g)
            for g in attr.graphs:
                yield from all_values(g)


def _packed(buf: Any, entries: list[tuple[int, Any]], size: int) -> bytes:
    """The concatenated values of a packed (or unpacked) fixed-width repeated field."""
    out = bytearray()
    for wire, value in entries:
        if wire == 2:
            out += bytes(buf[value[0]:value[1]])
        elif (wire == 5 and size == 4) or (wire == 1 and size == 8):
            out += value.to_bytes(size, "little")
        else:
            raise ProtoError("fixed-width field with a mismatched wire type")
    if len(out) % size:
        raise ProtoError("packed field length is not a multiple of its element size")
    return bytes(out)


def to_array(model: Model, t: Tensor, base_dir: str | None = None) -> Any:
    """The tensor's values as a numpy array shaped `t.dims`, in the storage dtype of
    DATA_TYPES (bfloat16 as uint16 bit patterns, float8 as uint8). External data is read
    from `base_dir` (the caller has checked the location stays inside it). Raises ProtoError
    for data that does not match the declared type and shape, ValueError for types that have
    no numeric value (strings)."""
    import numpy as np

    known = DATA_TYPES.get(t.data_type)
    if known is None:
        raise ValueError(f"ONNX tensor {t.name!r}: data type {t.data_type} has no numeric value")
    _, np_dtype, size = known
    count = 1
    for d in t.dims:
        if d < 0:
            raise ProtoError(f"tensor {t.name!r} has a negative dimension")
        count *= d
    buf = model.buf
    if t.data_location == EXTERNAL:
        if base_dir is None:
            raise ValueError(f"ONNX tensor {t.name!r} has external data and no model directory")
        offset = int(t.external_data.get("offset", "0") or 0)
        length = int(t.external_data.get("length", "0") or 0) or count * size
        with open(os.path.join(base_dir, t.external_data.get("location", "")), "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        arr = np.frombuffer(data, dtype=np_dtype)
    elif t.raw is not None:
        arr = np.frombuffer(buf, dtype=np_dtype, count=(t.raw[1] - t.raw[0]) // size, offset=t.raw[0])
    else:
        arr = _typed_array(buf, t, np_dtype)
    if arr.size != count:
        raise ProtoError(f"tensor {t.name!r}: {arr.size:,} values for shape {tuple(t.dims)}")
    return arr.reshape(tuple(t.dims))


def _typed_array(buf: Any, t: Tensor, np_dtype: str) -> Any:
    import numpy as np

    dt = t.data_type
    if dt in (1, 14):  # float_data (complex64: real/imaginary pairs)
        return np.frombuffer(_packed(buf, t.typed.get(4, []), 4), dtype="<f4").view(np_dtype)
    if dt in (11, 15):  # double_data
        return np.frombuffer(_packed(buf, t.typed.get(10, []), 8), dtype="<f8").view(np_dtype)
    ints: list[int] = []
    if dt == 7:
        for wire, value in t.typed.get(7, []):
            _ints(buf, wire, value, ints)
        return np.array(ints, dtype="<i8")
    if dt in (12, 13):
        for wire, value in t.typed.get(11, []):
            _ints(buf, wire, value, ints, signed=False)
        return np.array(ints, dtype="<u8").astype(np_dtype)
    # int32_data holds every narrower type: ints as themselves, float16/bfloat16/float8 as
    # their bit patterns (onnx.numpy_helper does the same re-packing).
    for wire, value in t.typed.get(5, []):
        _ints(buf, wire, value, ints)
    wide = np.array([v & 0xFFFFFFFF if v < 0 else v for v in ints], dtype="<u8")
    if dt in (10, 16):
        return (wide & 0xFFFF).astype("<u2").view(np_dtype)
    if dt in (17, 19):
        return (wide & 0xFF).astype("u1")
    if dt == 9:
        return np.array(ints, dtype="<i8").astype("?")
    return np.array(ints, dtype="<i8").astype(np_dtype)


def unaccounted(model: Model, t: Tensor, base_dir: str | None) -> str | None:
    """Why the bytes a loader reads for `t` do not match its declared type and shape (onnx's
    to_array would fail, or read other bytes than the scan can vouch for), or None. Nothing is
    copied: lengths are compared, external files are only stat'ed."""
    count = 1
    for d in t.dims:
        if d < 0:
            return f"tensor {t.name!r} has a negative dimension"
        count *= d
    if t.data_type == STRING:
        found = len(t.typed.get(6, []))
        return None if found == count else f"string tensor {t.name!r}: {found:,} values, {count:,} elements"
    known = DATA_TYPES.get(t.data_type)
    if known is None:
        return f"tensor {t.name!r}: data type {t.data_type} whose bytes mlaudit cannot account for"
    size = known[2]
    if t.data_location == EXTERNAL:
        return _external_problem(t, count * size, base_dir)
    if t.raw is not None:
        have = t.raw[1] - t.raw[0]
        if have != count * size:
            return f"tensor {t.name!r}: {have:,} raw bytes for {count:,} elements of {size} bytes"
        return None
    try:
        arr = _typed_array(model.buf, t, known[1])
    except (ProtoError, ValueError) as err:
        return f"tensor {t.name!r}: {err}"
    if arr.size != count:
        return f"tensor {t.name!r}: {arr.size:,} values for shape {tuple(t.dims)}"
    return None


def _external_problem(t: Tensor, need: int, base_dir: str | None) -> str | None:
    """The external-data entry of `t` must name a file holding exactly its bytes."""
    keys = set(t.external_data) - {"location", "offset", "length", "checksum"}
    if keys:
        return f"tensor {t.name!r}: unknown external-data key(s) {sorted(keys)[:3]}"
    try:
        offset = int(t.external_data.get("offset", "0") or 0)
        length = int(t.external_data.get("length", "") or need)
    except ValueError:
        return f"tensor {t.name!r}: external-data offset or length is not a number"
    if length != need or offset < 0:
        return f"tensor {t.name!r}: external data of {length:,} bytes for {need:,}"
    location = t.external_data.get("location", "")
    if base_dir is None or not location:
        return f"tensor {t.name!r}: external data without a location"
    if os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        return None  # outside the model directory: an error finding of its own, never read
    try:
        size = os.path.getsize(os.path.join(base_dir, location))
    except OSError:
        return f"tensor {t.name!r}: external data file {location!r} cannot be read"
    if offset + length > size:
        return f"tensor {t.name!r}: external data runs past the end of {location!r}"
    return None


def external_locations(model: Model) -> list[str]:
    """External-data locations exactly as written, one per tensor stored outside the model."""
    if model.graph is None:
        return []
    return [t.external_data.get("location", "") for _, t in walk_tensors(model.graph)
            if t.data_location == EXTERNAL]


