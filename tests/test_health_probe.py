"""--run-model measurements: FLOPs counted on meta tensors (attention included), activation
bytes, and the energy arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from mlaudit.checks.flops_energy import energy_kwh  # noqa: E402
from mlaudit.inputs.model_probe import ModelProbe, _measure_meta  # noqa: E402
from mlaudit.inputs.training_config import TrainingConfig  # noqa: E402
from mlaudit.params import RuleParams  # noqa: E402


def _cfg(shape, batch=4):
    return TrainingConfig(path=Path("x.yaml"), rel="x.yaml", dialect="mlaudit",
                          input_spec=({"shape": shape},), batch_size=batch)


def test_linear_flops_and_activations_on_meta():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    probe = ModelProbe("x.pt", "t")
    _measure_meta(model, _cfg([8]), probe)
    assert probe.forward_flops == 2 * 8 * 16 + 2 * 16 * 4
    # backward: grad wrt weights for both layers, wrt input only for the second
    assert probe.train_flops == probe.forward_flops + 2 * 16 * 4 + 2 * 8 * 16 + 2 * 16 * 4
    assert probe.activation_bytes > 0 and probe.activation_batch == 4
    assert next(model.parameters()).device.type == "cpu"  # the real model is untouched


def test_attention_is_counted_in_eval_mode():
    # nn.MultiheadAttention's eval fast path would escape the counter; it must be off.
    mha = torch.nn.MultiheadAttention(embed_dim=16, num_heads=2, batch_first=True).eval()

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    probe = ModelProbe("x.pt", "t")
    _measure_meta(Wrap().eval(), _cfg([10, 16]), probe)
    seq, d = 10, 16
    projections = 4 * 2 * seq * d * d  # q, k, v, out
    attention = 2 * 2 * seq * seq * d  # QK^T and AV
    assert probe.forward_flops == projections + attention


def test_energy_arithmetic():
    params = RuleParams("MLC020", {"peak-tflops": 100.0, "utilization": 0.5, "power-watts": 360.0,
                                   "pue": 1.0})
    # 1.8e17 FLOPs at 5e13 FLOP/s = 3600 s at 360 W = 0.36 kWh
    assert energy_kwh(1.8e17, params) == pytest.approx(0.36)
