"""The ONNX export picks the newest opset the installed runtime runs, with opset 18 and the
legacy exporter as fallbacks; an explicit opset or exporter is honoured as given."""

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
    assert auto[0] == ("dynamo", top)
    assert auto[-1] == ("legacy", top)  # the legacy exporter caps the opset at 17 itself
    assert (("dynamo", 18) in auto) == (top != 18)
    assert attempts(OnnxConfig(opset=18)) == [("dynamo", 18), ("legacy", 18)]
    assert attempts(OnnxConfig(exporter="legacy")) == [("legacy", top)]
    assert attempts(OnnxConfig(opset=20, exporter="dynamo")) == [("dynamo", 20)]
