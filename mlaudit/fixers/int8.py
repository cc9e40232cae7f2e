"""int8 / int8-static (unsafe): ONNX Runtime quantization by bytes, per op family.

Candidates are the nodes that hold constant weights, in four op families: MatMul/Gemm,
Gather (embeddings), Conv and recurrent ops (LSTM/GRU). The recipe follows the bytes: static
QDQ with calibration when Conv holds most of the candidate bytes (`int8-static` forces it),
dynamic weight quantization otherwise. A family the recipe cannot quantize is reported with the
reason and the bytes it keeps in fp32.

Accuracy-aware and deterministic: if quantizing every candidate misses the fidelity budget,
each node's sensitivity is *estimated* from one fp32 run (the relative rounding error of its
activation and its weight at 8 bits, from the activation range the run observed), and the
number k of most sensitive nodes kept fp32 is searched with real trials: k = 1, 2, 4, ... until
the budget is met, then bisected down. The search is bounded by work (trials), never by the
clock: the `time` budget may stop a run as "not finished", but never changes which model is
chosen. A run that ends up quantizing nothing is a skip. Latency is judged by the runner on the
same measurements the report prints (runner.latency_gate).
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
from mlaudit.fixers.base import FixState, StepResult, logger_level
from mlaudit.fixers.metrics import constant_tensor, fidelity, ort_runner, take
from mlaudit.units import format_bytes

FAMILIES = {"MatMul": "matmul", "Gemm": "matmul", "Gather": "gather", "Conv": "conv",
            "LSTM": "recurrent", "GRU": "recurrent"}  # fmt: skip
# which inputs of each op are its weights (constant initializers for a candidate)
WEIGHT_INPUTS = {"MatMul": (1,), "Gemm": (1,), "Gather": (0,), "Conv": (1,), "LSTM": (1, 2), "GRU": (1, 2)}
# what each recipe quantizes (ONNX Runtime's IntegerOps and QDQ registries), and why not the rest
RECIPE_OPS = {"dynamic": ("MatMul", "Gemm", "Gather", "LSTM"), "static": ("Conv", "MatMul", "Gemm", "Gather")}
WHY_NOT = {
    ("dynamic", "Conv"): "the dynamic recipe leaves Conv fp32 (ONNX Runtime's ConvInteger is slower "
    "than fp32 Conv on CPU); int8-static quantizes Conv",
    ("dynamic", "GRU"): "ONNX Runtime has no int8 GRU kernel",
    ("static", "LSTM"): "static QDQ has no LSTM; the dynamic recipe (int8:recipe=dynamic) quantizes it",
    ("static", "GRU"): "ONNX Runtime has no int8 GRU kernel",
}
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear
SENSITIVITY_SAMPLES = 16  # samples of the one fp32 run that observes activation ranges


@dataclass(frozen=True)
class Int8Config:
    """`recipe`: auto | dynamic | static; `per_channel`; `calibration_samples` (static, held out
    from the fidelity samples); `max_trials`: quantize-and-measure trials of the search."""

    recipe: str = "auto"
    per_channel: bool = True
    calibration_samples: int = 128
    max_trials: int = 16

    def __post_init__(self) -> None:
        if self.recipe not in ("auto", "dynamic", "static"):
            raise FixError(f"int8: recipe must be auto, dynamic or static, not {self.recipe!r}")
        if self.max_trials < 1 or self.calibration_samples < 1:
            raise FixError("int8: max_trials and calibration_samples must be at least 1")


@dataclass(frozen=True)
class Candidate:
    """A node holding constant weights."""

    name: str
    op: str
    family: str
    weight_bytes: int
    activation: str | None  # the float input whose range activation quantization depends on


def op_mix(path: Path) -> dict[str, int]:
    """Count of each op type in the graph."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _constants_to_initializers(model: Any) -> int:
    """Move tensors held by Constant nodes into initializers (exporters such as Paddle2ONNX
    write weights that way; the quantizer only quantizes initializers). Returns how many."""
    from onnx import numpy_helper

    keep, moved = [], 0
    names = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        tensor = constant_tensor(node)
        if tensor is not None and node.output[0] not in names:
            arr = numpy_helper.to_array(tensor)
            model.graph.initializer.append(numpy_helper.from_array(arr, node.output[0]))
            moved += 1
            continue
        keep.append(node)
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return moved


def _named_copy(src: Path, dst: Path) -> list[Candidate]:
    """Copy the model with every node named (quantizer selections are by name), weights in
    Constant nodes moved to initializers, and Gemm rewritten as MatMul + Add up front (the
    quantizer does that rewrite itself and renames the nodes, so selections made on the
    original names would silently match nothing). Returns the candidates."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization.onnx_model import ONNXModel

    model = onnx.load(str(src))
    _constants_to_initializers(model)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        # per-channel QuantizeLinear/DequantizeLinear (their `axis`) need opset 13: an opset-12
        # graph quantized per channel loads as an invalid model; convert first
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as err:  # the converter raises several types for unsupported ops
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise FixError(
                f"int8 needs opset {MIN_OPSET} for per-channel quantization; this model is opset {opset} "
                f"and onnx cannot convert it ({first[:160]}); try int8:per_channel=false"
            ) from None
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    wrapped = ONNXModel(model)
    wrapped.replace_gemm_with_matmul()
    model = wrapped.model
    onnx.save(model, str(dst))
    weights = {i.name: i for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        slots = WEIGHT_INPUTS.get(n.op_type)
        if not slots or len(n.input) <= max(slots) or not all(n.input[s] in weights for s in slots):
            continue
        nbytes = sum(numpy_helper.to_array(weights[n.input[s]]).nbytes for s in slots)
        act = n.input[0] if n.op_type != "Gather" and n.input[0] not in weights else None
        out.append(Candidate(n.name, n.op_type, FAMILIES[n.op_type], nbytes, act))
    return out


def pick_recipe(candidates: list[Candidate]) -> str:
    """static when Conv holds more candidate bytes than everything else, else dynamic."""
    conv = sum(c.weight_bytes for c in candidates if c.family == "conv")
    return "static" if conv and conv > sum(c.weight_bytes for c in candidates) - conv else "dynamic"


class _Reader:
    """CalibrationDataReader over batches of the model's named inputs."""

    def __init__(self, names: list[str], arrays: tuple, batch: int = 32) -> None:
        n = len(arrays[0])
        self._batches = iter(
            [{k: a[i : i + batch] for k, a in zip(names, arrays, strict=True)} for i in range(0, n, batch)]
        )

    def get_next(self) -> dict | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not used by quantize_static
        pass


def _quantize(
    recipe: str,
    src: Path,
    dst: Path,
    nodes: list[str],
    ops: list[str],
    config: Int8Config,
    calib: tuple[list[str], tuple] | None,
    cache: Path | None = None,
) -> None:
    """One quantize_dynamic / quantize_static call on the file `src`. `cache`: where static
    calibration ranges are kept between the trials of one search (int8_reuse.py)."""
    import inspect

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    sink = io.StringIO()
    with (
        logger_level(None, logging.ERROR),  # onnxruntime.quantization logs through the root logger
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        if recipe == "dynamic":
            quantize_dynamic(
                str(src),
                str(dst),
                per_channel=config.per_channel,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=ops,
                nodes_to_quantize=nodes,
                # weights only: activation x activation products (attention scores) stay fp32,
                # dynamic quantization of both operands costs more than it saves
                extra_options={"MatMulConstBOnly": True},
            )
        else:
            reader = type("Reader", (_Reader, CalibrationDataReader), {})(*calib)
            # calibrate once per search: ONNX Runtime (1.23+) stores the ranges it computed
            # and later trials read them; older releases calibrate again on every trial
            can_cache = "calibration_cache_path" in inspect.signature(quantize_static).parameters
            cached = {"calibration_cache_path": str(cache)} if cache is not None and can_cache else {}
            quantize_static(
                str(src),
                str(dst),
                reader,
                **cached,
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QInt8,
                op_types_to_quantize=ops,
                nodes_to_quantize=nodes,
            )


def _on(fid: dict, key: str, worst: Any) -> str:
    """' on output NAME' when the model has several outputs: the one whose `key` is worst."""
    per = fid.get("outputs")
    if not per:
        return ""
    have = {k: v[key] for k, v in per.items() if v[key] is not None}
    return f" on output {worst(have, key=have.__getitem__)!r}" if have else ""


def budget_miss(fid: dict, acc: float | None, acc_ref: float | None, budget: Any) -> str | None:
    """One line naming the first budget missed, by how much and (several outputs) on which
    output; None when all are met. The fidelity numbers are the worst over the outputs."""
    if fid["mean_cosine"] < budget.cosine:
        short = budget.cosine - fid["mean_cosine"]
        return f"mean cosine {fid['mean_cosine']:.4f} < {budget.cosine} (short by {short:.4f})" + _on(
            fid, "mean_cosine", min
        )
    if fid["top1_agreement"] is not None and fid["top1_agreement"] < budget.top1:
        return (
            f"top-1 agreement {fid['top1_agreement']:.2%} < {budget.top1:.2%} "
            f"(short by {(budget.top1 - fid['top1_agreement']) * 100:.2f} points)"
            + _on(fid, "top1_agreement", min)
        )
    if budget.max_abs is not None and fid["max_abs_err"] > budget.max_abs:
        over = fid["max_abs_err"] - budget.max_abs
        return f"max abs error {fid['max_abs_err']:.4g} > {budget.max_abs} (over by {over:.4g})" + _on(
            fid, "max_abs_err", max
        )
    if acc is not None and acc_ref is not None and acc_ref - acc > budget.accuracy_drop:
        return (
            f"accuracy drop {(acc_ref - acc) * 100:.2f} points > {budget.accuracy_drop * 100:.2f} "
            f"(over by {(acc_ref - acc - budget.accuracy_drop) * 100:.2f})"
        )
    return None


def estimate_sensitivity(
    prep: Path, candidates: list[Candidate], x: tuple, names: list[str]
) -> dict[str, float]:
    """Per candidate: estimated relative error of its product at 8 bits, from one fp32 run that
    exposes every candidate's activation input: activation step / sqrt(12) / rms(activation)
    (per-tensor range, as the quantizer uses) + the same for its weights (per output channel).
    Deterministic: one run on the first SENSITIVITY_SAMPLES samples."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(prep))
    weights = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    acts = sorted({c.activation for c in candidates if c.activation})
    have = {o.name for o in model.graph.output}
    model.graph.output.extend([onnx.ValueInfoProto(name=a) for a in acts if a not in have])
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {n: a[:SENSITIVITY_SAMPLES] for n, a in zip(names, x, strict=False)}
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed), strict=True))
    step = 1.0 / np.sqrt(12.0)
    scores: dict[str, float] = {}
    for c in candidates:
        err = 0.0
        if c.activation and c.activation in outs:
            a = np.asarray(outs[c.activation], dtype=np.float64)
            rms = float(np.sqrt((a * a).mean())) or 1e-12
            err += (float(a.max()) - float(a.min())) / 255.0 * step / rms
        node = nodes[c.name]
        for s in WEIGHT_INPUTS[c.op]:
            w = numpy_helper.to_array(weights[node.input[s]]).astype(np.float64)
            rms = float(np.sqrt((w * w).mean())) or 1e-12
            # per output channel: MatMul/Gemm-as-MatMul weights are [in, out], the rest [out, ...]
            axis = 1 if c.op in ("MatMul", "Gemm") and w.ndim == 2 else 0
            peak = (
                np.abs(w).max(axis=tuple(i for i in range(w.ndim) if i != axis)) if w.ndim > 1 else np.abs(w)
            )
            err += float((peak / 127.0).mean()) * step / rms
        scores[c.name] = err
    return scores


def _families(candidates: list[Candidate], quantized: set[str], recipe: str, mix: dict[str, int]) -> dict:
    """Per op family: nodes and weight bytes, how many of them were quantized, and why not."""
    out: dict[str, dict[str, Any]] = {}
    for c in candidates:
        f = out.setdefault(c.family, {"nodes": 0, "bytes": 0, "nodes_quantized": 0, "bytes_quantized": 0})
        f["nodes"] += 1
        f["bytes"] += c.weight_bytes
        if c.name in quantized:
            f["nodes_quantized"] += 1
            f["bytes_quantized"] += c.weight_bytes
    for (r, op), why in WHY_NOT.items():
        fam = FAMILIES[op]
        if r == recipe and fam in out and any(c.op == op and c.name not in quantized for c in candidates):
            out[fam]["not_quantized_because"] = why
    return out


def held_out(src: Any, n_fid: int, n_cal: int) -> tuple[tuple, int]:
    """Calibration samples that are not among the samples fidelity is judged on. Returns
    (calibration arrays, how many of the first fidelity samples to judge on). A source that
    makes inputs (synthetic, tokenizer) gives fresh samples after the first n_fid; a finite
    --eval-data set is split: its last samples (up to half) calibrate, the rest are judged."""
    if src.data is None:
        full = src.batch(n_fid + n_cal)
        return tuple(a[n_fid:] for a in full), n_fid
    total = src.samples
    cal = max(1, min(n_cal, total // 2))
    full = src.batch(total)
    return tuple(a[total - cal :] for a in full), max(1, min(n_fid, total - cal))


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
        candidates = _named_copy(prep, prep)
    except Exception:  # pre-processing is an optimization; quantize the export as it is
        candidates = _named_copy(state.onnx_path, prep)
    mix = op_mix(prep)
    recipe = forced or (config.recipe if config.recipe != "auto" else pick_recipe(candidates))
    supported = [c for c in candidates if c.op in RECIPE_OPS[recipe]]
    ops = sorted({c.op for c in supported})
    if not supported:
        fams = _families(candidates, set(), recipe, mix)
        what = ", ".join(f"{k}: {v.get('not_quantized_because', 'none')}" for k, v in fams.items())
        return StepResult(
            name, "unsafe", "skipped",
            f"nothing to quantize with the {recipe} recipe: no MatMul/Gemm/Gather/Conv/LSTM node holds "
            f"constant weights" + (f" it can quantize ({what})" if what else ""),
            evidence={"recipe": recipe, "op_mix": mix, "families": fams},
        )  # fmt: skip
    src = state.inputs
    baseline = state.require_baseline()
    x, ref = baseline.inputs, baseline.outputs
    labels = state.eval_labels
    acc_ref = baseline.accuracy
    calib = None
    if recipe == "static":
        calib_x, judged = held_out(src, len(x[0]), config.calibration_samples)
        if src.synthetic:
            state.warnings.append(
                "int8 static calibration used synthetic random inputs (pass --eval-data "
                "for representative calibration)"
            )
        calib = (list(src.names), calib_x)
        if judged < len(x[0]):  # judge only on samples the calibration did not see
            x, ref = tuple(a[:judged] for a in x), take(ref, judged)
            if labels is not None:
                labels = labels[:judged]
                acc_ref = classification(ref, labels)["accuracy"]
    threads = state.settings.threads
    scores_like = baseline.class_scores
    trials: list[dict[str, Any]] = []

    out_names = baseline.output_names

    reuse: dict[str, Any] = {}  # dynamic: the all-quantized model and the fp32 one, loaded once

    def build(out: Path, kept_fp32: list[str]) -> None:
        chosen = [c.name for c in supported if c.name not in set(kept_fp32)]
        if not chosen:  # an empty nodes_to_quantize means "every node" to ONNX Runtime
            shutil.copyfile(prep, out)
        elif recipe == "static":
            _quantize(recipe, prep, out, chosen, ops, config, calib, work / "calibration.json")
        elif not kept_fp32:
            _quantize(recipe, prep, out, chosen, ops, config, calib)
            reuse["all"] = out
        else:  # every candidate was quantized once; put the kept nodes back in fp32
            import onnx

            from mlaudit.fixers.int8_reuse import NotReusable, restore_fp32

            if "models" not in reuse:
                reuse["models"] = (onnx.load(str(reuse["all"])), onnx.load(str(prep)))
            try:
                onnx.save(restore_fp32(*reuse["models"], kept_fp32), str(out))
            except NotReusable:  # int8 passed between quantized nodes: quantize this subset
                _quantize(recipe, prep, out, chosen, ops, config, calib)

    def evaluate(kept_fp32: list[str]) -> tuple[Path, dict, float | None, Any]:
        out = work / f"q{len(trials)}.onnx"
        build(out, kept_fp32)
        got = ort_runner(out, threads)(x)
        acc = classification(got, labels)["accuracy"] if labels is not None else None
        fid = fidelity(ref, got, scores_like, out_names)
        trials.append({"kept_fp32": len(kept_fp32), "mean_cosine": round(fid["mean_cosine"], 6),
                       "miss": budget_miss(fid, acc, acc_ref, state.budget)})  # fmt: skip
        return out, fid, acc, got

    def out_of_work() -> str | None:
        if len(trials) >= config.max_trials:
            return f"{len(trials)} trials (int8:max_trials={config.max_trials})"
        if time.perf_counter() - started > state.budget.time:
            return f"the time limit ({state.budget.time:g} s, --budget time=...) after {len(trials)} trials"
        return None

    path, fid, acc, got = evaluate([])
    best = (path, fid, acc, got, 0)
    sensitivity: dict[str, float] = {}
    ranked: list[str] = []
    stopped = None
    if trials[-1]["miss"]:
        sensitivity = estimate_sensitivity(prep, supported, x, list(src.names))
        ranked = sorted(sensitivity, key=lambda n: (-sensitivity[n], n))  # ties by name: deterministic
        results: dict[int, tuple] = {}
        lo, hi, k = 0, None, 1  # lo: largest k known to miss; hi: smallest k known to pass
        while hi is None or hi - lo > 1:
            stopped = out_of_work()
            if stopped:
                break
            k = min(k, len(ranked)) if hi is None else (lo + hi) // 2
            r = evaluate(ranked[:k])
            results[k] = r
            if trials[-1]["miss"]:
                lo = k
                if k >= len(ranked):
                    break
                if hi is None:
                    k *= 2
            else:
                hi = k
        if stopped is None and hi is not None:
            best = (*results[hi], hi)
    path, fid, acc, got, kept_n = best
    kept = ranked[:kept_n]
    quantized = {c.name for c in supported} - set(kept)
    fams = _families(candidates, quantized, recipe, mix)
    total = sum(c.weight_bytes for c in candidates)
    q_bytes = sum(c.weight_bytes for c in candidates if c.name in quantized)
    evidence = {
        "recipe": recipe,
        "op_mix": mix,
        "families": fams,
        "candidate_nodes": len(candidates),
        "weight_bytes_quantized": q_bytes,
        "weight_bytes_total": total,
        "trials": trials,
        "sensitivity_kind": "estimated relative error of the node's product at 8 bits (one fp32 run)",
        # every candidate's estimate (only computed when whole-model int8 missed the budget),
        # for the per-node chart of fix-report.html
        "sensitivity": {n: round(v, 6) for n, v in sensitivity.items()},
        "kept_fp32": [
            {
                "node": n,
                "sensitivity": round(sensitivity[n], 6),
                "why": "among the most sensitive nodes the budget needed in fp32",
            }
            for n in kept
        ],  # fmt: skip
        # static: the samples fidelity was judged on (calibration used others, held out)
        "judged_samples": len(x[0]),
        "fidelity_vs_reference": fid,
        "search_s": round(time.perf_counter() - started, 2),
    }
    fam_text = ", ".join(
        f"{k} {v['nodes_quantized']}/{v['nodes']} "
        f"({format_bytes(v['bytes_quantized'])} of {format_bytes(v['bytes'])})"
        for k, v in fams.items()
    )
    detail = (
        f"{recipe} int8 ({'per-channel' if config.per_channel else 'per-tensor'}), "
        f"{len(quantized)}/{len(candidates)} weight nodes quantized, {q_bytes / max(total, 1):.0%} of the "
        f"weight bytes [{fam_text}], {len(kept)} kept fp32 by the search"
    )
    if stopped is not None:
        shutil.rmtree(work, ignore_errors=True)
        return StepResult(
            name, "unsafe", "failed", detail, evidence=evidence,
            budget_failure=f"int8 search not finished: stopped by {stopped} before a model met the "
            f"fidelity budget (best trial so far: {trials[-1]['miss'] or 'met'})",
        )  # fmt: skip
    miss = budget_miss(fid, acc, acc_ref, state.budget)
    if not quantized:
        shutil.rmtree(work, ignore_errors=True)
        return StepResult(
            name, "unsafe", "skipped",
            f"nothing quantized: the fidelity budget needs every one of the {len(supported)} candidate "
            f"nodes in fp32 (quantizing all of them: {trials[0]['miss']})",
            evidence=evidence,
        )  # fmt: skip
    final = state.workdir / f"{state.input_path.stem}.int8.onnx"
    shutil.copyfile(path, final)
    shutil.rmtree(work, ignore_errors=True)
    state.int8_path = final
    if len(x[0]) == len(baseline.inputs[0]):  # judged on every fidelity sample: the report reuses them
        state.int8_outputs = got
    if miss:
        return StepResult(
            name, "unsafe", "failed", detail, evidence=evidence,
            budget_failure=f"int8 fidelity budget failed: {miss}",
        )  # fmt: skip
    state.onnx_path = final
    top1 = fid["top1_agreement"]
    return StepResult(
        name, "unsafe", "applied", detail,
        verified=f"mean cosine {fid['mean_cosine']:.4f}, top-1 agreement "
        f"{'n/a (not class scores)' if top1 is None else format(top1, '.2%')} vs the fp32 reference",
        evidence=evidence,
    )  # fmt: skip


@fixer(
    "int8",
    "unsafe",
    "model",
    "int8 ONNX model via onnxruntime.quantization: MatMul/Gemm, Gather, Conv, LSTM weights by "
    "bytes (recipe by where the bytes are), most sensitive nodes kept fp32 until the fidelity "
    "budget is met",
    Int8Config,
    requires=("onnx",),
    conflicts=("int8-static",),
)
def int8(state: FixState, config: Int8Config) -> StepResult:
    """Accuracy-aware int8 with the recipe picked from where the weight bytes are."""
    return run_int8(state, config, "int8", None)


@fixer(
    "int8-static",
    "unsafe",
    "model",
    "static QDQ int8 with calibration on held-out samples (--eval-data, else synthetic "
    "inputs with a warning), accuracy-aware like int8",
    Int8Config,
    requires=("onnx",),
    conflicts=("int8",),
)
def int8_static(state: FixState, config: Int8Config) -> StepResult:
    """Static QDQ int8 regardless of the op mix."""
    return run_int8(state, config, "int8-static", "static")
