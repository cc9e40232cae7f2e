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
