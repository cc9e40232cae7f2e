"""FLOPs and energy (MLC020): forward FLOPs per example and training FLOPs per step, counted
by torch.utils.flop_counter on meta tensors, turned into an energy and CO2 *estimate* per
million inferences and per training run from stated hardware, utilisation, PUE and grid
intensity (all rule params)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.model_probe import ModelProbe
from mlaudit.model import Finding, Location
from mlaudit.params import RuleParams


def flops_text(n: float) -> str:
    """FLOPs with an SI prefix: 384 FLOPs, 1.2 MFLOPs, 3.4 GFLOPs, 5.6 TFLOPs."""
    units = (("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3))
    for unit, scale in units:
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} FLOPs"


def energy_kwh(flops: float, params: RuleParams) -> float:
    """kWh at the facility for `flops` on the configured hardware (estimate)."""
    seconds = flops / (params.peak_tflops * 1e12 * params.utilization)
    return seconds * params.power_watts * params.pue / 3.6e6


@rule("MLC020", needs="model_probe")
def compute_cost(probe: ModelProbe, ctx: RuleContext) -> Iterator[Finding]:
    if not probe.forward_flops:
        return
    p = ctx.params
    grid = p.grid_gco2_per_kwh
    per_million = energy_kwh(probe.forward_flops * 1e6, p)
    evidence: dict[str, Any] = {
        "forward_flops_per_example": probe.forward_flops,
        "kwh_per_million_inferences": per_million,
        "kg_co2e_per_million_inferences": per_million * grid / 1000,
        "assumptions": f"{p.peak_tflops} TFLOP/s peak at {p.utilization} utilisation, "
                       f"{p.power_watts} W, PUE {p.pue}, {grid:g} gCO2e/kWh",
    }
    run_txt = ""
    if probe.train_flops:
        evidence["train_flops_per_example"] = probe.train_flops
        if probe.train_batch:
            evidence["train_flops_per_step"] = probe.train_flops * probe.train_batch
        # The training run needs batch size and step count from the training config.
        batch, steps = probe.train_batch or 1, probe.train_steps
        if steps:
            run_flops = probe.train_flops * int(batch) * int(steps)
            kwh = energy_kwh(run_flops, p)
            evidence.update(train_run_flops=run_flops, kwh_per_training_run=kwh,
                            kg_co2e_per_training_run=kwh * grid / 1000)
            run_txt = (f"; a training run (batch {batch} x {steps:,} steps) ~{kwh:.3g} kWh, "
                       f"{kwh * grid / 1000:.3g} kg CO2e")
    budget = p.max_gflops
    gflops = probe.forward_flops / 1e9
    over = f" — above the budget max-gflops={budget:g}" if budget > 0 and gflops > budget else ""
    yield ctx.finding(
        f"ESTIMATE: {flops_text(probe.forward_flops)} forward per example{over}; ~{per_million:.3g} kWh and "
        f"{per_million * grid / 1000:.3g} kg CO2e per million inferences{run_txt} "
        f"(assumes {evidence['assumptions']})",
        Location(probe.rel), evidence=evidence,
    )
