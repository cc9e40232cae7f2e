"""int8 / int8-static (unsafe): ONNX Runtime quantization, accuracy-aware and never slower.

Recipe by op mix: dynamic per-channel weight quantization for MatMul/Gemm-heavy graphs
(transformers, MLPs), static QDQ with calibration for Conv-heavy graphs (`int8-static` forces
static). Accuracy-aware: if quantizing everything misses the fidelity budget, each quantizable
node's sensitivity is measured once (quantize that node alone), then the most sensitive nodes
are kept fp32 one by one until the budget is met or the time limit is hit (best so far kept).
A result slower than the fp32 ONNX model is never kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError, fixer
from mlaudit.fixers.base import FixState, StepResult
from mlaudit.fixers.metrics import fidelity, latency, ort_runner

DYNAMIC_OPS = ("MatMul", "Gemm")
STATIC_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class Int8Config:
    """`recipe`: auto | dynamic | static; `per_channel`; `calibration_samples` (static)."""

    recipe: str = "auto"
    per_channel: bool = True
    calibration_samples: int = 128


def op_mix(path: Path) -> dict[str, int]:
    """Count of each op type in the graph."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def pick_recipe(mix: dict[str, int]) -> str:
    """static for Conv-heavy graphs, dynamic for MatMul/Gemm-heavy ones."""
    conv = mix.get("Conv", 0) + mix.get("ConvTranspose", 0)
    return "static" if conv and conv >= mix.get("MatMul", 0) + mix.get("Gemm", 0) else "dynamic"


def _named_copy(src: Path, dst: Path) -> list[tuple[str, str, bool]]:
    """Copy the model giving every node a name (quantizer selections are by name) and with
    Gemm rewritten as MatMul + Add up front: the quantizer does that rewrite itself and renames
    the nodes, so per-node selections made on the original names would silently match nothing."""
    import onnx
    from onnxruntime.quantization.onnx_model import ONNXModel

    model = onnx.load(str(src))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    wrapped = ONNXModel(model)
    wrapped.replace_gemm_with_matmul()
    model = wrapped.model
    onnx.save(model, str(dst))
    weights = {i.name for i in model.graph.initializer}
    # (name, op type, whether the second operand is a constant weight)
    return [(n.name, n.op_type, len(n.input) > 1 and n.input[1] in weights) for n in model.graph.node]


class _Reader:
    """CalibrationDataReader over batches of one numpy input."""

    def __init__(self, name: str, x: Any, batch: int = 32) -> None:
        self._batches = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not used by quantize_static
        pass


def _quantize(
    recipe: str,
    src: Path,
    dst: Path,
    nodes: list[str],
    exclude: list[str],
    config: Int8Config,
    calib: tuple[str, Any] | None,
) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    sink = io.StringIO()
    logging.getLogger().setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        if recipe == "dynamic":
            quantize_dynamic(
                str(src),
                str(dst),
                per_channel=config.per_channel,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(DYNAMIC_OPS),
                nodes_to_quantize=nodes,
                nodes_to_exclude=exclude,
                # weights only: activation x activation products (attention scores) stay fp32,
                # dynamic quantization of both operands costs more than it saves
                extra_options={"MatMulConstBOnly": True},
            )
        else:
            reader = type("Reader", (_Reader, CalibrationDataReader), {})(*calib)
            quantize_static(
                str(src),
                str(dst),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QInt8,
                op_types_to_quantize=list(STATIC_OPS),
                nodes_to_quantize=nodes,
                nodes_to_exclude=exclude,
            )


def budget_miss(fid: dict, acc: float | None, acc_ref: float | None, budget: Any) -> str | None:
    """One line naming the first budget missed and by how much; None when all are met."""
    if fid["mean_cosine"] < budget.cosine:
        short = budget.cosine - fid["mean_cosine"]
        return f"mean cosine {fid['mean_cosine']:.4f} < {budget.cosine} (short by {short:.4f})"
    if fid["top1_agreement"] is not None and fid["top1_agreement"] < budget.top1:
        return (
            f"top-1 agreement {fid['top1_agreement']:.2%} < {budget.top1:.2%} "
            f"(short by {(budget.top1 - fid['top1_agreement']) * 100:.2f} points)"
        )
    if budget.max_abs is not None and fid["max_abs_err"] > budget.max_abs:
        over = fid["max_abs_err"] - budget.max_abs
        return f"max abs error {fid['max_abs_err']:.4g} > {budget.max_abs} (over by {over:.4g})"
    if acc is not None and acc_ref is not None and acc_ref - acc > budget.accuracy_drop:
        return (
            f"accuracy drop {(acc_ref - acc) * 100:.2f} points > {budget.accuracy_drop * 100:.2f} "
            f"(over by {(acc_ref - acc - budget.accuracy_drop) * 100:.2f})"
        )
    return None


def _score(fid: dict) -> float:
    """Distance from the fp32 outputs: lower is better."""
    return (1.0 - fid["mean_cosine"]) + (
        1.0 - (fid["top1_agreement"] if fid["top1_agreement"] is not None else 1.0)
    )


def run_int8(state: FixState, config: Int8Config, name: str, forced: str | None) -> StepResult:
    """Quantize state.onnx_path into <stem>.int8.onnx within the budget (see module doc)."""
    from mlaudit.fixers.metrics import classification

    if state.onnx_path is None:
        raise FixError(f"{name} needs an ONNX model (input .onnx or the onnx fix first)")
    started = time.perf_counter()
    work = state.workdir / ".int8-work"
    work.mkdir(exist_ok=True)
    prep = work / "prep.onnx"
    try:  # shape inference + graph cleanup recommended by ONNX Runtime before quantizing
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quant_pre_process(str(state.onnx_path), str(prep), skip_symbolic_shape=True)
        nodes = _named_copy(prep, prep)
    except Exception:  # pre-processing is an optimization; quantize the export as it is
        nodes = _named_copy(state.onnx_path, prep)
    mix = op_mix(prep)
    recipe = forced or (config.recipe if config.recipe != "auto" else pick_recipe(mix))
    ops = DYNAMIC_OPS if recipe == "dynamic" else STATIC_OPS
    # dynamic: only products with a constant weight are quantized (MatMulConstBOnly)
    candidates = [n for n, op, const_b in nodes if op in ops and (const_b or recipe == "static")]
    if not candidates:
        return StepResult(name, "unsafe", "skipped", f"no {'/'.join(ops)} nodes to quantize")
    src = state.inputs
    x = state.extras["fidelity_inputs"]
    ref = state.extras["reference_outputs"]
    labels = state.eval_labels
    acc_ref = state.extras.get("reference_accuracy")
    calib = None
    if recipe == "static":
        calib_x = src.batch(min(config.calibration_samples, len(x[0])))[0]
        if src.synthetic:
            state.warnings.append(
                "int8 static calibration used synthetic random inputs (pass --eval-data "
                "for representative calibration)"
            )
        calib = (src.names[0] if state.onnx_input is None else src.names[0], calib_x)
    threads = state.extras["threads"]
    trials = 0

    def evaluate(
        exclude: list[str], only: list[str] | None = None, tag: str = ""
    ) -> tuple[Path, dict, float | None]:
        nonlocal trials
        trials += 1
        out = work / f"q{trials}{tag}.onnx"
        _quantize(recipe, prep, out, only or [], exclude, config, calib)
        got = ort_runner(out, threads)(x)
        acc = classification(got, labels)["accuracy"] if labels is not None else None
        return out, fidelity(ref, got), acc

    path, fid, acc = evaluate([])
    miss = budget_miss(fid, acc, acc_ref, state.budget)
    excluded: list[dict[str, Any]] = []
    sensitivity: dict[str, float] = {}
    best = (path, fid, acc, [], miss)
    timed_out = False
    if miss:
        for node in candidates:  # sensitivity: quantize this node alone, once
            if time.perf_counter() - started > state.budget.time:
                timed_out = True
                break
            _p, f, _a = evaluate([], only=[node], tag="s")
            sensitivity[node] = _score(f)
        ranked = sorted(sensitivity, key=sensitivity.get, reverse=True)
        kept_fp32: list[str] = []
        for node in ranked:
            if time.perf_counter() - started > state.budget.time:
                timed_out = True
                break
            kept_fp32.append(node)
            path, fid, acc = evaluate(list(kept_fp32))
            miss = budget_miss(fid, acc, acc_ref, state.budget)
            if _score(fid) < _score(best[1]) or not miss:
                best = (path, fid, acc, list(kept_fp32), miss)
            if not miss:
                break
        path, fid, acc, kept, miss = best
        excluded = [
            {
                "node": n,
                "sensitivity": round(sensitivity[n], 6),
                "why": "most sensitive remaining node while the budget was missed",
            }
            for n in kept
        ]
    final = state.workdir / f"{state.input_path.stem}.int8.onnx"
    shutil.copyfile(path, final)
    # never keep a result slower than the fp32 ONNX model
    b = max(int(state.extras.get("large_batch", 32)), 1)
    lat = latency(
        {"fp32": ort_runner(state.onnx_path, threads), "int8": ort_runner(final, threads)},
        {b: src.batch(b)},
        seconds=state.extras.get("measure_seconds", 1.0),
    )
    ratio = lat["int8"][str(b)]["p50_ms"] / lat["fp32"][str(b)]["p50_ms"]
    shutil.rmtree(work, ignore_errors=True)
    evidence = {
        "recipe": recipe,
        "op_mix": mix,
        "quantizable_nodes": len(candidates),
        "trials": trials,
        "kept_fp32": excluded,
        "sensitivity_measured": len(sensitivity),
        "timed_out": timed_out,
        "fidelity_vs_reference": fid,
        "latency_ratio_vs_fp32_onnx": round(ratio, 3),
        "search_s": round(time.perf_counter() - started, 2),
    }
    state.extras["int8_path"] = final
    detail = (
        f"{recipe} int8 ({'per-channel' if config.per_channel else 'per-tensor'}), "
        f"{len(candidates) - len(excluded)}/{len(candidates)} {'/'.join(ops)} nodes quantized, "
        f"{len(excluded)} kept fp32; {ratio:.2f}x the fp32 ONNX latency at batch {b}"
    )
    if miss:
        why = " (time limit hit)" if timed_out else ""
        return StepResult(
            name,
            "unsafe",
            "failed",
            detail,
            evidence=evidence,
            budget_failure=f"int8 fidelity budget failed{why}: {miss}",
        )
    if ratio > state.budget.latency:
        return StepResult(
            name,
            "unsafe",
            "failed",
            detail,
            evidence=evidence,
            budget_failure=f"int8 latency budget failed: {ratio:.2f}x the fp32 ONNX model at batch "
            f"{b} (limit {state.budget.latency:.2f}x, over by {ratio - state.budget.latency:.2f}x)",
        )
    state.onnx_path = final
    return StepResult(
        name,
        "unsafe",
        "applied",
        detail,
        verified=f"mean cosine {fid['mean_cosine']:.4f}, top-1 agreement "
        f"{fid['top1_agreement'] if fid['top1_agreement'] is None else format(fid['top1_agreement'], '.2%')} "
        "vs PyTorch fp32",
        evidence=evidence,
    )


@fixer(
    "int8",
    "unsafe",
    "model",
    "int8 ONNX model via onnxruntime.quantization (recipe by op mix), most "
    "sensitive layers kept fp32 until the fidelity budget is met; never slower than fp32 ONNX",
    Int8Config,
)
def int8(state: FixState, config: Int8Config) -> StepResult:
    """Accuracy-aware int8 with the recipe picked from the op mix."""
    return run_int8(state, config, "int8", None)


@fixer(
    "int8-static",
    "unsafe",
    "model",
    "static QDQ int8 with calibration (--eval-data, else synthetic "
    "inputs with a warning), accuracy-aware like int8",
    Int8Config,
)
def int8_static(state: FixState, config: Int8Config) -> StepResult:
    """Static QDQ int8 regardless of the op mix."""
    return run_int8(state, config, "int8-static", "static")
