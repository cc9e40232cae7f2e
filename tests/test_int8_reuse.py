"""The int8 search quantizes every candidate once and builds each trial's model from that one
(int8_reuse.py): the model it builds must compute what ONNX Runtime's own quantize_dynamic of
the same subset computes, and calibration ranges of static int8 are computed once per search."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _encoder_like(path, embedding_bias=True):
    """ids -> Gather (embedding) [-> + bias, a float op as BERT's position embeddings] -> two
    MatMuls sharing their input (as Q and K do) -> Add -> MatMul -> output; every node named,
    weights as initializers."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = {n: rng.standard_normal(s).astype(np.float32) for n, s in
         {"emb": (50, 16), "wq": (16, 16), "wk": (16, 16), "wo": (16, 8), "bias": (16,)}.items()}  # fmt: skip
    embed = [helper.make_node("Gather", ["emb", "ids"], ["h"], name="embed")]
    if embedding_bias:
        embed = [helper.make_node("Gather", ["emb", "ids"], ["h0"], name="embed"),
                 helper.make_node("Add", ["h0", "bias"], ["h"], name="position")]  # fmt: skip
    else:
        del w["bias"]
    nodes = [
        *embed,
        helper.make_node("MatMul", ["h", "wq"], ["q"], name="query"),
        helper.make_node("MatMul", ["h", "wk"], ["k"], name="key"),
        helper.make_node("Add", ["q", "k"], ["s"], name="add"),
        helper.make_node("MatMul", ["s", "wo"], ["out"], name="proj"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 6, 8])],
        [numpy_helper.from_array(a, n) for n, a in w.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _run(model_or_path, ids):
    is_proto = hasattr(model_or_path, "SerializeToString")
    data = model_or_path.SerializeToString() if is_proto else str(model_or_path)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


def _quantized(tmp_path, subset, embedding_bias=True):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, out = tmp_path / "m.onnx", tmp_path / f"q-{'-'.join(subset)}.onnx"
    if not src.exists():
        _encoder_like(src, embedding_bias)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        quantize_dynamic(
            str(src), str(out), nodes_to_quantize=subset, per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gather"], extra_options={"MatMulConstBOnly": True},
        )  # fmt: skip
    return src, out


EVERY = ["embed", "query", "key", "proj"]


@pytest.mark.parametrize("kept", [["query"], ["proj"], ["query", "key", "proj"], ["key", "embed"], ["embed"]])
def test_restored_trial_equals_quantize_dynamic_of_the_same_subset(tmp_path, kept):
    from mlaudit.fixers.int8_reuse import restore_fp32

    src, every = _quantized(tmp_path, EVERY)
    _, direct = _quantized(tmp_path, [n for n in EVERY if n not in kept])
    built = restore_fp32(onnx.load(str(every)), onnx.load(str(src)), kept)
    onnx.checker.check_model(built)
    ids = np.random.default_rng(1).integers(0, 50, size=(4, 6)).astype(np.int64)
    np.testing.assert_array_equal(_run(built, ids), _run(direct, ids))
    assert not np.array_equal(_run(built, ids), _run(every, ids))
    ops = {n.name: n.op_type for n in built.graph.node}
    assert all(ops[k] in ("MatMul", "Gather") for k in kept)  # the fp32 nodes are back
    fp32 = {"emb": "embed", "wq": "query", "wk": "key", "wo": "proj"}
    # with their fp32 weights, and nothing is left of their int8 form
    inits = {i.name for i in built.graph.initializer}
    assert fp32.keys() & inits == {w for w, n in fp32.items() if n in kept}
    int8_products = sum(n.op_type == "MatMulInteger" for n in built.graph.node)
    assert int8_products == len({"query", "key", "proj"} - set(kept))


def test_int8_passed_between_quantized_nodes_is_not_rebuilt(tmp_path):
    """The quantized embedding feeds the quantized products in int8 (no float `h` in between):
    keeping the embedding fp32 is not a local edit, so the search quantizes that trial itself."""
    from mlaudit.fixers.int8_reuse import NotReusable, restore_fp32

    src, every = _quantized(tmp_path, EVERY, embedding_bias=False)
    with pytest.raises(NotReusable, match="embed"):
        restore_fp32(onnx.load(str(every)), onnx.load(str(src)), ["embed"])
