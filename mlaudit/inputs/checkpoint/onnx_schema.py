"""The wire shape of onnx.proto's messages, as the protobuf runtime that `onnx.load` uses
checks it: which fields hold sub-messages (parsed, so a corrupt one fails the whole load) and
which repeated scalars may come packed (a truncated varint or a ragged fixed-width run fails it).

Generated from `onnx.onnx_ml_pb2` (onnx 1.23) and compared with the installed onnx by
tests/test_onnx_proto.py. Per field number: kind ("m" message, "b" string/bytes, "v" varint,
"4"/"8" fixed width; "*" repeated) and the sub-message type name.
"""

from __future__ import annotations

SCHEMA: dict[str, dict[int, tuple[str, str | None]]] = {
    "ModelProto": {
        1: ("v", None), 2: ("b", None), 3: ("b", None), 4: ("b", None), 5: ("v", None), 6: ("b", None),
        7: ("m", "GraphProto"), 8: ("m*", "OperatorSetIdProto"), 14: ("m*", "StringStringEntryProto"),
        20: ("m*", "TrainingInfoProto"), 25: ("m*", "FunctionProto"),
        26: ("m*", "DeviceConfigurationProto"),
    },
    "OperatorSetIdProto": {
        1: ("b", None), 2: ("v", None),
    },
    "GraphProto": {
        1: ("m*", "NodeProto"), 2: ("b", None), 5: ("m*", "TensorProto"), 10: ("b", None),
        11: ("m*", "ValueInfoProto"), 12: ("m*", "ValueInfoProto"), 13: ("m*", "ValueInfoProto"),
        14: ("m*", "TensorAnnotation"), 15: ("m*", "SparseTensorProto"),
        16: ("m*", "StringStringEntryProto"),
    },
    "NodeProto": {
        1: ("b*", None), 2: ("b*", None), 3: ("b", None), 4: ("b", None), 5: ("m*", "AttributeProto"),
        6: ("b", None), 7: ("b", None), 8: ("b", None), 9: ("m*", "StringStringEntryProto"),
        10: ("m*", "NodeDeviceConfigurationProto"),
    },
    "AttributeProto": {
        1: ("b", None), 2: ("4", None), 3: ("v", None), 4: ("b", None), 5: ("m", "TensorProto"),
        6: ("m", "GraphProto"), 7: ("4*", None), 8: ("v*", None), 9: ("b*", None),
        10: ("m*", "TensorProto"), 11: ("m*", "GraphProto"), 13: ("b", None), 14: ("m", "TypeProto"),
        15: ("m*", "TypeProto"), 20: ("v", None), 21: ("b", None), 22: ("m", "SparseTensorProto"),
        23: ("m*", "SparseTensorProto"),
    },
    "TensorProto": {
        1: ("v*", None), 2: ("v", None), 3: ("m", "Segment"), 4: ("4*", None), 5: ("v*", None),
        6: ("b*", None), 7: ("v*", None), 8: ("b", None), 9: ("b", None), 10: ("8*", None),
        11: ("v*", None), 12: ("b", None), 13: ("m*", "StringStringEntryProto"), 14: ("v", None),
        16: ("m*", "StringStringEntryProto"),
    },
    "Segment": {
        1: ("v", None), 2: ("v", None),
    },
    "StringStringEntryProto": {
        1: ("b", None), 2: ("b", None),
    },
    "SparseTensorProto": {
        1: ("m", "TensorProto"), 2: ("m", "TensorProto"), 3: ("v*", None),
    },
    "TypeProto": {
        1: ("m", "Tensor"), 4: ("m", "Sequence"), 5: ("m", "Map"), 6: ("b", None), 7: ("m", "Opaque"),
        8: ("m", "SparseTensor"), 9: ("m", "Optional"),
    },
    "Tensor": {
        1: ("v", None), 2: ("m", "TensorShapeProto"),
    },
    "TensorShapeProto": {
        1: ("m*", "Dimension"),
    },
    "Dimension": {
        1: ("v", None), 2: ("b", None), 3: ("b", None),
    },
    "Sequence": {
        1: ("m", "TypeProto"),
    },
    "Map": {
        1: ("v", None), 2: ("m", "TypeProto"),
    },
    "Optional": {
        1: ("m", "TypeProto"),
    },
    "SparseTensor": {
        1: ("v", None), 2: ("m", "TensorShapeProto"),
    },
    "Opaque": {
        1: ("b", None), 2: ("b", None),
    },
    "NodeDeviceConfigurationProto": {
        1: ("b", None), 2: ("m*", "ShardingSpecProto"), 3: ("v", None),
    },
    "ShardingSpecProto": {
        1: ("b", None), 2: ("v*", None), 3: ("m*", "IntIntListEntryProto"),
        4: ("m*", "ShardedDimProto"),
    },
    "IntIntListEntryProto": {
        1: ("v", None), 2: ("v*", None),
    },
    "ShardedDimProto": {
        1: ("v", None), 2: ("m*", "SimpleShardedDimProto"),
    },
    "SimpleShardedDimProto": {
        1: ("v", None), 2: ("b", None), 3: ("v", None),
    },
    "ValueInfoProto": {
        1: ("b", None), 2: ("m", "TypeProto"), 3: ("b", None), 4: ("m*", "StringStringEntryProto"),
    },
    "TensorAnnotation": {
        1: ("b", None), 2: ("m*", "StringStringEntryProto"),
    },
    "TrainingInfoProto": {
        1: ("m", "GraphProto"), 2: ("m", "GraphProto"), 3: ("m*", "StringStringEntryProto"),
        4: ("m*", "StringStringEntryProto"),
    },
    "FunctionProto": {
        1: ("b", None), 4: ("b*", None), 5: ("b*", None), 6: ("b*", None), 7: ("m*", "NodeProto"),
        8: ("b", None), 9: ("m*", "OperatorSetIdProto"), 10: ("b", None), 11: ("m*", "AttributeProto"),
        12: ("m*", "ValueInfoProto"), 13: ("b", None), 14: ("m*", "StringStringEntryProto"),
    },
    "DeviceConfigurationProto": {
        1: ("b", None), 2: ("v", None), 3: ("b*", None),
    },
}  # fmt: skip
