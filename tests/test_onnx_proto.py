"""The torch-free ONNX wire reader against the onnx package on every kind of tensor storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlaudit.inputs.checkpoint import escapes_dir, onnx_proto

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "fixtures" / "build"


def _typed(name: str, data_type: int, dims: list[int], values: list) -> TensorProto:
    return helper.make_tensor(name, data_type, dims, values, raw=False)


def _model(tmp: Path) -> Path:
    """A model holding tensors in raw_data and in every typed field, Constant nodes, an If
    with both branches as subgraphs, metadata and one external-data initializer."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "raw_f32"),
        numpy_helper.from_array(rng.standard_normal((5,)).astype(np.float16), "raw_f16"),
        numpy_helper.from_array(np.array([[1, -2], [3, 2**40]], dtype=np.int64), "raw_i64"),
        numpy_helper.from_array(np.array([True, False, True]), "raw_bool"),
        numpy_helper.from_array(rng.standard_normal((2, 2)), "raw_f64"),
        _typed("typed_f32", TensorProto.FLOAT, [2, 3], [0.5, -1.0, 0.0, 3.25, 1e30, -0.0]),
        _typed("typed_i32", TensorProto.INT32, [4], [1, -7, 2**31 - 1, -(2**31)]),
        _typed("typed_i8", TensorProto.INT8, [3], [-128, 0, 127]),
        _typed("typed_u8", TensorProto.UINT8, [2], [0, 255]),
        _typed("typed_i64", TensorProto.INT64, [3], [-(2**62), 0, 5]),
        _typed("typed_f64", TensorProto.DOUBLE, [2], [1.5, -2.5]),
        _typed("typed_u64", TensorProto.UINT64, [2], [0, 2**63 + 5]),
        _typed("typed_bool", TensorProto.BOOL, [2], [True, False]),
        helper.make_tensor("typed_f16", TensorProto.FLOAT16, [3],
                           np.array([1.0, -65504.0, 6e-8], dtype=np.float16).view(np.uint16).tolist(),
                           raw=False),
        helper.make_tensor("raw_bf16", TensorProto.BFLOAT16, [2], b"\x80\x3f\x00\xc0", raw=True),
        helper.make_tensor("scalar", TensorProto.FLOAT, [], [7.0]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
    ]
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then_c"], value=numpy_helper.from_array(
            np.arange(6, dtype=np.float32).reshape(2, 3), "tc"))],
        "then", [], [helper.make_tensor_value_info("then_c", TensorProto.FLOAT, [2, 3])],
        initializer=[numpy_helper.from_array(np.ones((2,), np.float32), "then_w")])
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["else_c"])], "else", [],
        [helper.make_tensor_value_info("else_c", TensorProto.FLOAT, [2, 3])])
    nodes = [
        helper.make_node("Constant", [], ["const_out"], value=numpy_helper.from_array(
            np.array([1.5, 2.5], np.float32), "cv")),
        helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              initializer=inits)
    model = helper.make_model(graph, producer_name="test")
    helper.set_model_props(model, {"author": "me", "note": "ünïcode"})
    # one initializer in an external file
    big = numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "external_w")
    big.data_location = TensorProto.EXTERNAL
    (tmp / "weights.bin").write_bytes(b"\x00" * 16 + np.asarray(
        numpy_helper.to_array(numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32)))
    ).tobytes())
    del big.external_data[:]
    for k, v in (("location", "weights.bin"), ("offset", "16"), ("length", str(8 * 8 * 4))):
        entry = big.external_data.add()
        entry.key, entry.value = k, v
    big.ClearField("raw_data")
    model.graph.initializer.append(big)
    path = tmp / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _onnx_walk(graph, prefix=""):
    for init in graph.initializer:
        yield prefix + init.name, init
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.HasField("t"):
                yield prefix + (node.output[0] if node.output else node.name), attr.t
            if attr.HasField("g"):
                yield from _onnx_walk(attr.g, f"{prefix}{node.name or node.op_type}.{attr.name}.")
            for i, g in enumerate(attr.graphs):
                yield from _onnx_walk(g, f"{prefix}{node.name or node.op_type}.{attr.name}{i}.")


def _as_storage(arr: np.ndarray, data_type: int) -> np.ndarray:
    """onnx's array in the storage dtype onnx_proto uses (bf16 / fp8 as bit patterns)."""
    if data_type == TensorProto.BFLOAT16:
        if arr.dtype == np.float32:
            return (arr.view(np.uint32) >> 16).astype(np.uint16)
        return arr.view(np.uint16)
    return arr


def _fixture_models(tmp: Path) -> list[Path]:
    paths = [_model(tmp)]
    paths += sorted(BUILD.rglob("*.onnx")) if BUILD.is_dir() else []
    return paths


def test_reader_matches_onnx_on_every_tensor(tmp_path):
    for path in _fixture_models(tmp_path):
        data = path.read_bytes()
        ref = onnx.load_from_string(data)
        ours = onnx_proto.parse_model(data)
        assert ours.ir_version == ref.ir_version
        assert ours.opset_import == [(o.domain, o.version) for o in ref.opset_import]
        assert ours.metadata_props == {p.key: p.value for p in ref.metadata_props}
        theirs = list(_onnx_walk(ref.graph))
        mine = list(onnx_proto.walk_tensors(ours.graph))
        assert [n for n, _ in mine] == [n for n, _ in theirs], path
        for (name, t), (_, r) in zip(mine, theirs, strict=True):
            assert t.data_type == r.data_type and t.dims == list(r.dims), name
            assert t.data_location == r.data_location
            assert t.external_data == {e.key: e.value for e in r.external_data}
            if r.data_location == TensorProto.EXTERNAL:
                if escapes_dir(path.parent, t.external_data.get("location", "")):
                    continue  # refused by mlaudit's loader (MLS008's fire case)
                ref_copy = TensorProto()
                ref_copy.CopyFrom(r)
                onnx.external_data_helper.load_external_data_for_tensor(ref_copy, str(path.parent))
                expected = numpy_helper.to_array(ref_copy)
            else:
                expected = numpy_helper.to_array(r)
            got = onnx_proto.to_array(ours, t, str(path.parent))
            expected = _as_storage(np.asarray(expected), r.data_type)
            assert got.shape == expected.shape, name
            assert got.dtype == expected.dtype, (name, got.dtype, expected.dtype)
            assert got.tobytes() == expected.tobytes(), name


def test_node_structure_matches_onnx(tmp_path):
    data = _model(tmp_path).read_bytes()
    ref = onnx.load_from_string(data)
    ours = onnx_proto.parse_model(data)
    assert [(n.name, n.op_type, n.domain, n.inputs, n.outputs) for n in ours.graph.nodes] == [
        (n.name, n.op_type, n.domain, list(n.input), list(n.output)) for n in ref.graph.node]
    assert onnx_proto.external_locations(ours) == ["weights.bin"]


@pytest.mark.parametrize("data, reason", [
    (b"\x3a\x05\x0a\x01", "claims"),  # graph field longer than the file
    (b"\x08\xff\xff", "truncated varint"),
    (b"\x0f\x00", "invalid wire type"),
    (b"\x00\x01", "field number 0"),
])
def test_malformed_bytes_raise_one_line(data, reason):
    with pytest.raises(onnx_proto.ProtoError, match=reason):
        onnx_proto.parse_model(data)
    with pytest.raises(Exception):  # noqa: B017 - the onnx package refuses them too
        onnx.load_from_string(data)


def test_truncation_anywhere_is_an_error_or_a_prefix(tmp_path):
    """Cutting the file anywhere never crashes the reader with anything but ProtoError."""
    data = _model(tmp_path).read_bytes()
    for cut in range(1, len(data), max(1, len(data) // 200)):
        try:
            onnx_proto.parse_model(data[:cut])
        except onnx_proto.ProtoError:
            pass


def test_field_numbers_match_onnx_schema():
    from onnx import onnx_ml_pb2 as pb

    fields = {
        "ModelProto": {"ir_version": 1, "producer_name": 2, "graph": 7, "opset_import": 8,
                       "metadata_props": 14},
        "GraphProto": {"node": 1, "name": 2, "initializer": 5},
        "NodeProto": {"input": 1, "output": 2, "name": 3, "op_type": 4, "attribute": 5, "domain": 7},
        "AttributeProto": {"name": 1, "t": 5, "g": 6, "graphs": 11},
        "TensorProto": {"dims": 1, "data_type": 2, "float_data": 4, "int32_data": 5, "string_data": 6,
                        "int64_data": 7, "name": 8, "raw_data": 9, "double_data": 10,
                        "uint64_data": 11, "external_data": 13, "data_location": 14},
        "OperatorSetIdProto": {"domain": 1, "version": 2},
        "StringStringEntryProto": {"key": 1, "value": 2},
    }
    for message, expected in fields.items():
        desc = getattr(pb, message).DESCRIPTOR
        assert {f: desc.fields_by_name[f].number for f in expected} == expected, message
    enum = {"FLOAT": "float32", "UINT8": "uint8", "INT8": "int8", "UINT16": "uint16",
            "INT16": "int16", "INT32": "int32", "INT64": "int64", "BOOL": "bool", "FLOAT16": "float16",
            "DOUBLE": "float64", "UINT32": "uint32", "UINT64": "uint64", "COMPLEX64": "complex64",
            "COMPLEX128": "complex128", "BFLOAT16": "bfloat16", "FLOAT8E4M3FN": "float8_e4m3fn",
            "FLOAT8E5M2": "float8_e5m2"}
    assert {TensorProto.DataType.Name(c): v[0] for c, v in onnx_proto.DATA_TYPES.items()} == enum


def test_wire_schema_matches_onnx_descriptors():
    """onnx_schema.SCHEMA (what check_wire validates) is onnx.proto's shape: every message type
    reachable from ModelProto, each field's kind, repetition and sub-message type."""
    from google.protobuf.descriptor import FieldDescriptor as F
    from onnx import onnx_ml_pb2 as pb

    from mlaudit.inputs.checkpoint.onnx_schema import SCHEMA

    kinds = {F.TYPE_MESSAGE: "m", F.TYPE_STRING: "b", F.TYPE_BYTES: "b", F.TYPE_FLOAT: "4",
             F.TYPE_FIXED32: "4", F.TYPE_SFIXED32: "4", F.TYPE_DOUBLE: "8", F.TYPE_FIXED64: "8",
             F.TYPE_SFIXED64: "8"}  # fmt: skip
    derived: dict[str, dict] = {}

    def walk(desc) -> None:
        if desc.name in derived:
            return
        derived[desc.name] = {}
        for f in desc.fields:
            sub = f.message_type.name if f.type == F.TYPE_MESSAGE else None
            derived[desc.name][f.number] = (kinds.get(f.type, "v") + ("*" if f.is_repeated else ""), sub)
            if sub:
                walk(f.message_type)

    walk(pb.ModelProto.DESCRIPTOR)
    assert derived == SCHEMA


def test_check_wire_refuses_what_protobuf_refuses():
    """Corrupt sub-messages of fields the scan never reads, and ragged packed fields, fail
    onnx.load's parser; the same bytes are a ProtoError here. Unknown fields and fields of
    another wire type are skipped by both."""
    from onnx import ModelProto

    def key(number: int, wire: int) -> bytes:
        value = number << 3 | wire
        return bytes([value]) if value < 128 else bytes([value & 0x7F | 0x80, value >> 7])

    cases = {
        key(7, 2) + b"\x02\xff\xff": False,  # graph: a corrupt sub-message
        key(8, 2) + b"\x02\x00\x00": False,  # opset_import: field number 0 inside
        key(7, 2) + b"\x04" + key(5, 2) + b"\x02" + key(1, 2) + b"\x00": True,  # empty packed dims
        key(7, 2) + b"\x05" + key(5, 2) + b"\x03" + key(4, 2) + b"\x01\x00": False,  # 1 byte of floats
        key(7, 0) + b"\x05": True,  # graph with a varint wire type: an unknown field to protobuf
        key(99, 2) + b"\x02\xff\xff": True,  # an unknown field's bytes are not parsed
    }
    for data, parses in cases.items():
        try:
            ModelProto().ParseFromString(data)
            protobuf_ok = True
        except Exception:
            protobuf_ok = False
        assert protobuf_ok == parses, data
        try:
            onnx_proto.check_wire(data, 0, len(data))
            mine = True
        except onnx_proto.ProtoError:
            mine = False
        assert mine == parses, data
