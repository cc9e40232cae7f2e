"""The ONNX export tries the TorchScript-based exporter first, then torch.export at the newest
opset the installed runtime runs and at opset 18; an explicit opset or exporter is honoured."""

from __future__ import annotations

from mlaudit.fixers.onnx_export import OPSET_RUNTIME, OnnxConfig, attempts, default_opset


def test_default_opset_is_one_the_runtime_supports():
    import onnxruntime

    opset = default_opset()
    assert opset in {o for o, _ in OPSET_RUNTIME}
    have = tuple(int(p) for p in onnxruntime.__version__.split(".")[:2])
    assert have >= dict(OPSET_RUNTIME)[opset]


def test_attempt_order():
    top = default_opset()
    auto = attempts(OnnxConfig())
    # the TorchScript-based exporter first (seconds, where torch.export takes tens of seconds on
    # an encoder); it caps the opset at 17 itself
    assert auto[0] == ("legacy", top)
    assert auto[1] == ("dynamo", top)
    assert (("dynamo", 18) in auto) == (top != 18)
    assert attempts(OnnxConfig(opset=18)) == [("dynamo", 18), ("legacy", 18)]
    assert attempts(OnnxConfig(opset=17)) == [("legacy", 17), ("dynamo", 17)]
    assert attempts(OnnxConfig(exporter="legacy")) == [("legacy", top)]
    assert attempts(OnnxConfig(opset=20, exporter="dynamo")) == [("dynamo", 20)]
