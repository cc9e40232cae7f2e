"""Before/after measurements: size, parameters, latency, fidelity, accuracy, energy estimate.

Latency is measured with warm-up and interleaved rounds (A, B, C, A, B, C, ...) so that a
background load spike hits every variant alike; p50/p95 over the rounds, throughput from p50.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Energy is an estimate, never a measurement: busy-core watts times wall time.
WATTS_PER_CORE = 15.0
MIN_ROUNDS = 7  # interleaved rounds per batch size at least: a median of 7 survives 3 spikes


def files_size(paths: Sequence[Path]) -> int:
    """Bytes on disk of the artifact files (ONNX external data included by the caller)."""
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())


def onnx_files(path: Path) -> list[Path]:
    """An ONNX model file plus the external-data files it references."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    files = {path}
    for init in model.graph.initializer:
        if uses_external_data(init):
            for entry in init.external_data:
                if entry.key == "location":
                    files.add(path.parent / entry.value)
    return sorted(files)


def onnx_output_names(path: Path) -> list[str]:
    """The graph output names of an ONNX model (weights not loaded)."""
    import onnx

    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def count_params(arrays: Sequence[Any]) -> tuple[int, int]:
    """(elements, non-zero elements) over numpy arrays or torch tensors."""
    import numpy as np

    total = nonzero = 0
    for a in arrays:
        arr = a.detach().cpu().float().numpy() if hasattr(a, "detach") else np.asarray(a)
        total += arr.size
        nonzero += int(np.count_nonzero(arr))
    return total, nonzero


def module_params(module: Any) -> tuple[int, int]:
    """Parameters of a torch module (shared parameters counted once)."""
    return count_params(list(module.parameters()))


def constant_tensor(node: Any) -> Any | None:
    """The TensorProto a `Constant` node holds as its single `value` attribute, else None (exporters
    put weights there; other Constant forms hold scalars and lists)."""
    if node.op_type != "Constant" or len(node.attribute) != 1 or node.attribute[0].name != "value":
        return None
    return node.attribute[0].t


def onnx_params(path: Path) -> tuple[int, int]:
    """Elements in an ONNX model's initializers (int8 weights count as parameters too) and in
    float tensors of Constant nodes (exporters such as Paddle2ONNX store weights there)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = [numpy_helper.to_array(i) for i in model.graph.initializer]
    for node in model.graph.node:
        tensor = constant_tensor(node)
        if tensor is not None:
            arr = numpy_helper.to_array(tensor)
            if np.issubdtype(arr.dtype, np.floating):  # integer constants are shapes and indices
                arrays.append(arr)
    # scales and zero points of quantized tensors are bookkeeping, not weights
    return count_params([a for a in arrays if a.size > 1])


def as_outputs(out: Any) -> list[Any]:
    """Every output as a list of arrays: a single array becomes a list of one (runners return
    lists; callers and tests may pass one array)."""
    return list(out) if isinstance(out, (list, tuple)) else [out]


def take(outputs: Any, n: int) -> list[Any]:
    """The first n samples of every output."""
    return [o[:n] for o in as_outputs(outputs)]


def _flat_tensors(out: Any) -> list[Any]:
    """Tensors of a module's output in order: a tensor, or tuples / lists / dicts of them
    (a Hugging Face ModelOutput is a dict), nested; the order ONNX exporters flatten them in."""
    if hasattr(out, "detach"):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flat_tensors(item)]
    return []  # None and other non-tensor outputs carry nothing to compare


def torch_runner(module: Any) -> Callable:
    """fn(tuple of numpy arrays) -> list of every numpy output of a torch module."""
    import torch

    def run(arrays: tuple) -> list[Any]:
        with torch.inference_mode():
            out = module(*(torch.from_numpy(a) for a in arrays))
        return [t.float().numpy() for t in _flat_tensors(out)]

    return run


def ort_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with a fixed intra-op thread count."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    ort.set_default_logger_severity(4)  # failures surface as exceptions; no stderr noise
    opts.log_severity_level = 4
    # Idle ORT workers spin by default and would steal the cores PyTorch is timed on in the
    # interleaved rounds; without spinning each runtime gets the machine to itself.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_error(err: BaseException, path: Path) -> str:
    """One line for an ONNX Runtime failure: the model, its opset, the op and node named in the
    runtime's message, and the message's first line (without the `[ONNXRuntimeError] : n :`
    prefix)."""
    import re

    text = str(err).strip()
    op = re.search(
        r"Op \((\w+)\)|op_type[=: ]+(\w+)|Op type: (\w+)|(\w+)\(\d+\) node|In Node, \(\"[^\"]*\", (\w+),",
        text,
    )
    node = re.search(
        r"In Node, \(\"([^\"]*)\"|Node \(([^)]*)\)|node (\S+)|Node: (\S+)", text, flags=re.IGNORECASE
    )
    try:
        import onnx

        opset = next(
            (
                o.version
                for o in onnx.load(str(path), load_external_data=False).opset_import
                if o.domain in ("", "ai.onnx")
            ),
            None,
        )
    except Exception:  # an unreadable file: the runtime's own message says why
        opset = None
    first = re.sub(
        r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text.splitlines()[0] if text else type(err).__name__
    )
    where = ""
    if op:
        where += f" op {next(g for g in op.groups() if g)}"
    if node:
        where += f" (node {next(g for g in node.groups() if g)})"
    return f"onnxruntime cannot run {Path(path).name} (opset {opset}){where}: {first[:300]}"


def ort_runner(path: Path, threads: int) -> Callable:
    """fn(tuple of numpy arrays) -> list of every output of an ONNX model. Runtime failures
    (loading or running) become a one-line FixError naming the op and the opset (ort_error)."""
    from mlaudit.fixers import FixError

    try:
        sess = ort_session(path, threads)
    except Exception as err:  # onnxruntime raises its own exception types, several of them
        raise FixError(ort_error(err, path)) from None
    names = [i.name for i in sess.get_inputs()]

    def run(arrays: tuple) -> list[Any]:
        try:
            return list(sess.run(None, dict(zip(names, arrays, strict=False))))
        except Exception as err:  # onnxruntime raises its own exception types
            raise FixError(ort_error(err, path)) from None

    return run


def latency(
    runners: dict[str, Callable], inputs: dict[int, tuple], seconds: float = 1.0
) -> dict[str, dict[str, dict[str, float]]]:
    """name -> batch -> {p50_ms, p95_ms, throughput_per_s, rounds, spread_pct}; interleaved
    rounds within a time budget of about `seconds` per batch size (at least MIN_ROUNDS each).

    One untimed warm-up round (first-call allocations, lazy kernel selection) also sizes the
    number of rounds; a second warm-up round is added only when the first is short, so that a
    slow model (a PyTorch encoder at batch 32: ~0.6 s a call) is not run 3 extra times."""
    import numpy as np

    out: dict[str, dict[str, dict[str, float]]] = {n: {} for n in runners}
    names = list(runners)
    for batch, arrays in inputs.items():
        t0 = time.perf_counter()
        for name in names:
            runners[name](arrays)
        one_round = max(time.perf_counter() - t0, 1e-6)
        if one_round < seconds / MIN_ROUNDS:
            for name in names:
                runners[name](arrays)
        rounds = int(min(200, max(MIN_ROUNDS, seconds / one_round)))
        samples: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
                t = time.perf_counter()
                runners[name](arrays)
                samples[name].append(time.perf_counter() - t)
        for name in names:
            s = np.asarray(samples[name])
            p25, p50, p75 = (float(np.percentile(s, q)) for q in (25, 50, 75))
            out[name][str(batch)] = {
                "p50_ms": round(p50 * 1e3, 4),
                "p95_ms": round(float(np.percentile(s, 95)) * 1e3, 4),
                "throughput_per_s": round(batch / p50, 1),
                "rounds": rounds,
                # interquartile range / median: how far one round's time wanders
                "spread_pct": round((p75 - p25) / p50 * 100, 1) if p50 > 0 else 0.0,
            }
    return out


FIDELITY_SAMPLES = 256  # samples fidelity is judged on when inputs are made on demand
TOKENIZER_SAMPLES = 128  # ... by a tokenizer: 128 padded sentences (4k tokens) judge an encoder


def fidelity_samples(inputs: Any) -> int:
    """How many samples fidelity and the int8 search are judged on: all of --eval-data up to 512,
    else a fixed count by input kind (never by the clock: the same inputs idle or loaded). Every
    int8 trial and the PyTorch reference run on all of them, so this is most of the fix's work
    on a large model."""
    if inputs.samples is not None:
        return min(inputs.samples, 512)
    return TOKENIZER_SAMPLES if inputs.origin == "tokenizer" else FIDELITY_SAMPLES


def is_class_scores(ref: Any, name: str | None = None) -> bool:
    """Whether an output holds class scores on its last axis: declared by its name (logits,
    scores, probabilities), or a [batch, classes] matrix whose rows are not unit vectors.
    Hidden states, embeddings and heatmaps are not: top-1 over them means nothing. An
    L2-normalised row (a speaker or sentence embedding) is compared by cosine only."""
    import numpy as np

    if name and any(k in name.lower() for k in ("logit", "score", "prob", "class", "label")):
        return np.ndim(ref) >= 2 and np.shape(ref)[-1] > 1
    if np.ndim(ref) != 2 or np.shape(ref)[-1] <= 1:
        return False
    norms = np.linalg.norm(np.asarray(ref, dtype=np.float64), axis=1)
    return not (len(norms) and np.allclose(norms, 1.0, atol=1e-3))


def _fidelity_one(ref: Any, new: Any, scores: bool) -> dict[str, Any]:
    import numpy as np

    ref_a = np.asarray(ref, dtype=np.float64)
    new_a = np.asarray(new, dtype=np.float64)
    if ref_a.shape != new_a.shape:
        from mlaudit.fixers import FixError

        raise FixError(f"output shapes differ: {list(new_a.shape)} vs the reference's {list(ref_a.shape)}")
    r = ref_a.reshape(len(ref_a), -1)
    n = new_a.reshape(len(new_a), -1)
    # no additive epsilon: a heatmap row of sigmoid outputs near 0 has norms ~1e-6, and
    # dot / (|r| |n| + 1e-12) scored identical rows as 0.05 (an OCR detector "0.74")
    denom = np.linalg.norm(r, axis=1) * np.linalg.norm(n, axis=1)
    both_zero = (np.abs(r).sum(1) == 0) & (np.abs(n).sum(1) == 0)
    cos = np.where(denom > 0, (r * n).sum(1) / np.where(denom > 0, denom, 1.0), np.where(both_zero, 1.0, 0.0))
    top1 = float((ref_a.argmax(-1) == new_a.argmax(-1)).mean()) if scores and ref_a.shape[-1] > 1 else None
    return {
        "max_abs_err": float(np.abs(r - n).max()) if r.size else 0.0,
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "top1_agreement": top1,
    }


def fidelity(
    ref: Any, new: Any, class_scores: bool | list[bool] | None = None, names: list[str] | None = None
) -> dict[str, Any]:
    """Per output: max abs error, per-sample cosine (mean, min) and, for class scores only
    (`class_scores`, one flag per output, else inferred by `is_class_scores`), top-1 agreement
    over the last axis (per position for per-position scores).

    `ref` and `new` are one array or a list of arrays (every output of the model). The top-level
    numbers are the worst over the outputs (lowest cosines and top-1, largest error) so that a
    budget holds for every output; with several outputs, `outputs` has each one by name and
    `worst_output` names the one with the lowest mean cosine."""
    refs, news = as_outputs(ref), as_outputs(new)
    if len(refs) != len(news):
        from mlaudit.fixers import FixError

        raise FixError(f"the model gives {len(news)} outputs, the reference {len(refs)}")
    flags = class_scores if isinstance(class_scores, list) else [class_scores] * len(refs)
    labels = list(names or []) + [f"output_{i}" for i in range(len(names or []), len(refs))]
    per = {
        labels[i]: _fidelity_one(r, n, is_class_scores(r, labels[i]) if flags[i] is None else bool(flags[i]))
        for i, (r, n) in enumerate(zip(refs, news, strict=True))
    }
    rows = list(per.values())
    top1s = [f["top1_agreement"] for f in rows if f["top1_agreement"] is not None]
    out: dict[str, Any] = {
        "max_abs_err": max(f["max_abs_err"] for f in rows),
        "mean_cosine": min(f["mean_cosine"] for f in rows),
        "min_cosine": min(f["min_cosine"] for f in rows),
        "top1_agreement": min(top1s) if top1s else None,
    }
    if len(rows) > 1:
        out["outputs"] = per
        out["worst_output"] = min(per, key=lambda k: per[k]["mean_cosine"])
    return out


def classification(outputs: Any, labels: Any) -> dict[str, float]:
    """Accuracy and macro F1 of class scores (the first output) against integer labels."""
    import numpy as np

    pred = np.asarray(as_outputs(outputs)[0]).reshape(len(labels), -1).argmax(1)
    y = np.asarray(labels).astype(int)
    f1s = []
    for c in np.unique(y):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": float((pred == y).mean()), "macro_f1": float(np.mean(f1s))}


def energy_wh_per_million(p50_ms: float, batch: int, threads: int) -> float:
    """Estimated Wh per million inferences: per-sample time x busy cores x WATTS_PER_CORE."""
    per_sample_s = p50_ms / 1e3 / batch
    return round(per_sample_s * threads * WATTS_PER_CORE * 1e6 / 3600.0, 4)


def default_threads() -> int:
    """Threads for every runtime in one measurement (recorded in the report)."""
    return max(1, min(4, os.cpu_count() or 1))
