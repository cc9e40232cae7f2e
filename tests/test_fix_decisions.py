"""Fix decisions that must not depend on the clock or on the shape of an output: top-1 only
for class scores, the latency gate on the printed numbers with timer noise taken into account."""

from __future__ import annotations

import numpy as np

from mlaudit.fixers.base import Budget
from mlaudit.fixers.metrics import fidelity, is_class_scores
from mlaudit.fixers.runner import latency_gate


def test_top1_only_for_class_scores_on_the_last_axis():
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((4, 8, 16))
    assert fidelity(hidden, hidden + 0.01)["top1_agreement"] is None  # hidden states
    assert fidelity(hidden, hidden, class_scores=True)["top1_agreement"] == 1.0  # per position
    logits = rng.standard_normal((6, 3))
    flipped = logits.copy()
    flipped[0] = flipped[0][::-1] * 10  # one sample's winner changes
    assert is_class_scores(logits) and not is_class_scores(hidden)
    assert is_class_scores(hidden, "logits") and not is_class_scores(rng.random((2, 1, 8, 8)), "heatmap")
    assert fidelity(logits, flipped)["top1_agreement"] == 5 / 6
    unit = logits / np.linalg.norm(logits, axis=1, keepdims=True)  # an L2-normalised embedding
    assert not is_class_scores(unit) and is_class_scores(unit, "logits")


def test_cosine_of_tiny_outputs_is_not_eaten_by_an_epsilon():
    """An OCR detector's heatmap rows are sigmoid outputs near 0 (norms ~1e-6): identical rows
    must score 1.0 (an additive 1e-12 in the denominator made them 0.05 and refused the model)."""
    heat = np.full((3, 1, 8, 8), 1e-7)
    heat[1] = 0.0  # an all-zero row: equal to an all-zero row
    fid = fidelity(heat, heat.copy())
    assert fid["min_cosine"] == fid["mean_cosine"] == 1.0
    other = heat.copy()
    other[1, 0, 0, 0] = 1e-7  # zero vs not zero: no similarity
    assert fidelity(heat, other)["min_cosine"] == 0.0


def test_every_output_is_judged_and_the_worst_one_named():
    """Issue 16: a model with several outputs is judged on each (per-sample cosine and max abs
    error), top-1 only on the one that holds class scores; a budget miss names the output."""
    from mlaudit.fixers.int8 import budget_miss

    rng = np.random.default_rng(1)
    embedding, logits = rng.standard_normal((8, 4, 16)), rng.standard_normal((8, 5))  # token states, scores
    noisy = embedding + rng.standard_normal((8, 4, 16))  # the second output alone is damaged
    fid = fidelity([logits, embedding], [logits, noisy], names=["logits", "embedding"])
    assert fid["outputs"]["logits"]["mean_cosine"] > 0.999999
    assert fid["outputs"]["logits"]["top1_agreement"] == 1.0
    assert fid["outputs"]["embedding"]["top1_agreement"] is None
    assert fid["mean_cosine"] == fid["outputs"]["embedding"]["mean_cosine"] < 0.9
    assert fid["worst_output"] == "embedding" and fid["top1_agreement"] == 1.0
    miss = budget_miss(fid, None, None, Budget())
    assert miss is not None and miss.startswith("mean cosine") and miss.endswith("on output 'embedding'")
    assert "outputs" not in fidelity(logits, logits)  # one output: the flat numbers only


def test_exported_output_axes_follow_the_inputs_they_change_with():
    from mlaudit.fixers.onnx_export import output_axes

    sizes = [{"batch": 2, "sequence": 32}, {"batch": 5, "sequence": 16}]
    refs = [
        [np.zeros((2, 32, 384)), np.zeros((2, 384)), np.zeros((2, 7))],
        [np.zeros((5, 16, 384)), np.zeros((5, 384)), np.zeros((5, 3))],
    ]
    assert output_axes(refs, sizes) == [
        {0: "batch", 1: "sequence"},
        {0: "batch"},
        {0: "batch", 1: "output_2_dim1"},
    ]


def _rows(fp32_ms: float, int8_ms: float, spread: float) -> list[dict]:
    def lat(ms: float) -> dict:
        return {"32": {"p50_ms": ms, "spread_pct": spread}}

    return [{"name": "onnx fp32", "latency": lat(fp32_ms)}, {"name": "onnx int8", "latency": lat(int8_ms)}]


def test_latency_gate_judges_printed_numbers_and_never_flips_on_noise():
    budget = Budget()  # latency <= 1.0x fp32 ONNX
    assert latency_gate(_rows(10.0, 8.0, 5.0), budget, 32) == (None, [])
    failure, _ = latency_gate(_rows(10.0, 13.0, 5.0), budget, 32)
    assert failure is not None and "1.30x" in failure and "over by 0.30x" in failure
    # 1.01x with 10% timer spread: cannot be told from the limit, kept with a warning
    failure, warnings = latency_gate(_rows(10.0, 10.1, 10.0), budget, 32)
    assert failure is None and any("timer noise" in w for w in warnings)
    failure, warnings = latency_gate(_rows(10.0, 9.9, 40.0), budget, 32)
    assert failure is None and any("noisy timings" in w for w in warnings)


def test_onnx_params_count_weights_held_in_constant_nodes(tmp_path):
    """The OCR detector stores its weights in Constant nodes: the report's input row said 0
    parameters. Float constants count; integer constants (shapes, indices) do not."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from mlaudit.fixers.metrics import onnx_params

    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    shape = numpy_helper.from_array(np.array([-1, 4]), "shape")
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "w")),
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("MatMul", ["x", "w"], ["y0"]),
        helper.make_node("Reshape", ["y0", "shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    assert onnx_params(tmp_path / "m.onnx") == (12, 11)
