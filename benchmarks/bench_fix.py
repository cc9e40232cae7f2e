"""`mlaudit fix` on the trained digits models (MLP, CNN, transformer encoder): onnx + int8.

Per model: size ratios, latency ratios vs PyTorch fp32 and vs ONNX Runtime fp32 (batch 1 and
32, interleaved runs, same thread count), fidelity, accuracy and the wall time of the whole
fix. Targets on the transformer encoder (from the issue): int8 >= 2x faster than PyTorch fp32
at batch 32, <= 0.3x size, mean cosine >= 0.99; reported as met or not, never adjusted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINED = ROOT / "fixtures" / "build" / "trained"
MODELS = ("mlp", "cnn", "transformer")


def _one(name: str, work: Path, threads: int) -> dict:
    from mlaudit.fixers.base import Budget
    from mlaudit.fixers.runner import FixOptions, run_fix

    opts = FixOptions(
        checkpoint=TRAINED / f"{name}.pt", config=TRAINED / f"{name}.yaml", apply=("onnx", "int8"),
        out=work / name, budget=Budget(), eval_data=TRAINED / f"{name}_eval.npz", keep_failed=True,
        run_model=True, measure_seconds=2.0, threads=threads,
    )  # fmt: skip
    started = time.perf_counter()
    outcome = run_fix(opts)
    wall = time.perf_counter() - started
    rows = {v["name"]: v for v in outcome.report["variants"]}
    torch_row, fp32, int8 = rows["input"], rows["onnx fp32"], rows.get("onnx int8")
    step = next(s for s in outcome.report["steps"] if s["name"] == "int8")
    fp32_weight_bytes = torch_row["params"] * 4

    def speedup(new: dict, old: dict, batch: str) -> float:
        return round(old["latency"][batch]["p50_ms"] / new["latency"][batch]["p50_ms"], 3)

    out = {
        "status": outcome.report["status"], "budget_failure": outcome.budget_failure,
        "recipe": step["evidence"].get("recipe"),
        "kept_fp32": [k["node"] for k in step["evidence"].get("kept_fp32", [])],
        "params": torch_row["params"], "input_file_bytes": torch_row["size_bytes"],
        "onnx_fp32_bytes": fp32["size_bytes"], "fix_wall_s": round(wall, 2), "threads": threads,
    }  # fmt: skip
    if int8 is not None:
        out.update({
            "int8_bytes": int8["size_bytes"],
            "size_ratio_int8_vs_onnx_fp32": round(int8["size_bytes"] / fp32["size_bytes"], 3),
            "size_ratio_int8_vs_fp32_weights": round(int8["size_bytes"] / fp32_weight_bytes, 3),
            "size_ratio_int8_vs_input_file": round(int8["size_bytes"] / torch_row["size_bytes"], 3),
            "speedup_int8_vs_pytorch_b1": speedup(int8, torch_row, "1"),
            "speedup_int8_vs_pytorch_b32": speedup(int8, torch_row, "32"),
            "speedup_int8_vs_ort_fp32_b1": speedup(int8, fp32, "1"),
            "speedup_int8_vs_ort_fp32_b32": speedup(int8, fp32, "32"),
            "speedup_ort_fp32_vs_pytorch_b32": speedup(fp32, torch_row, "32"),
            "p50_ms_b32": {k: rows[k]["latency"]["32"]["p50_ms"] for k in ("input", "onnx fp32", "onnx int8")},  # noqa: E501
            "int8_fidelity": int8["fidelity"],
            "accuracy": {k: rows[k].get("accuracy") for k in ("input", "onnx fp32", "onnx int8")},
        })  # fmt: skip
    return out


def run() -> dict:
    """Fix every fixture model; return the numbers and the transformer targets."""
    import os

    from fixtures.generate import generate

    generate()
    threads = int(os.environ.get("MLAUDIT_BENCH_THREADS", "1"))  # 1: stable on a shared machine
    work = Path(tempfile.mkdtemp(prefix="mlaudit-bench-fix-"))
    try:
        results = {name: _one(name, work, threads) for name in MODELS}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    enc = results["transformer"]
    if "int8_bytes" in enc:
        results["transformer_targets"] = {
            "speedup_vs_pytorch_b32>=2": enc["speedup_int8_vs_pytorch_b32"] >= 2.0,
            "size_vs_onnx_fp32<=0.3": enc["size_ratio_int8_vs_onnx_fp32"] <= 0.3,
            "size_vs_fp32_weights<=0.3": enc["size_ratio_int8_vs_fp32_weights"] <= 0.3,
            "mean_cosine>=0.99": enc["int8_fidelity"]["mean_cosine"] >= 0.99,
        }
    return results
