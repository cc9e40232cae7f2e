"""Reproduce issue 16 on a MiniLM-class encoder (not part of `make bench`; run by hand):

    .venv/bin/python -m benchmarks.repro_minilm [WORKDIR]

Builds the encoder offline (fixtures.gen._text_encoder.py), runs `mlaudit fix DIR --apply onnx,int8`,
and measures what a user serving padded batches would get: mean-pooled sentence embeddings of
the fp32 and int8 ONNX vs PyTorch (with the attention mask), file sizes vs the safetensors, and
ONNX Runtime's default `quantize_dynamic` on an export that keeps the model's three inputs.
Prints one JSON document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ort(path: Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 4
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _embed_onnx(sess, batch: dict) -> object:
    """Mean-pooled embeddings from an ONNX encoder, feeding only the inputs the graph has."""
    from fixtures.gen._text_encoder import mean_pool

    names = [i.name for i in sess.get_inputs()]
    feed = {n: batch[n] for n in names if n in batch}
    if len(feed) != len(names):  # an exported graph with a generic input name
        feed = {names[0]: batch["input_ids"]}
    return mean_pool(sess.run(None, feed)[0], batch["attention_mask"]), names


def main(argv: list[str]) -> int:
    import numpy as np
    import torch
    import transformers
    from onnxruntime.quantization import quantize_dynamic

    from fixtures.gen._text_encoder import build_minilm, cosines, mean_pool, padded_batches

    work = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="repro-minilm-"))
    # REPRO_MODEL: an existing Hugging Face directory (e.g. a real MiniLM from the fix corpus)
    model_dir = Path(os.environ["REPRO_MODEL"]) if os.environ.get("REPRO_MODEL") else work / "minilm"
    if not (model_dir / "config.json").exists():
        build_minilm(model_dir)
    torch.set_num_threads(1)
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    batches = padded_batches(tok)
    out: dict = {"model_dir": str(model_dir)}
    st = model_dir / "model.safetensors"
    out["safetensors_bytes"] = st.stat().st_size

    # today's mlaudit fix
    fixed = work / "fixed"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/mlaudit"), "fix", str(model_dir), "--apply", "onnx,int8", "--out", str(fixed),
         "--force", "--threads", "1", *argv[1:]],
        capture_output=True, text=True,
    )  # fmt: skip
    out["mlaudit_fix"] = {
        "exit": proc.returncode,
        "wall_s": round(time.perf_counter() - t0, 1),
        "stderr_tail": proc.stderr.strip().splitlines()[-3:],
    }
    print(json.dumps(out["mlaudit_fix"]), file=sys.stderr, flush=True)

    def ref(batch: dict):
        with torch.inference_mode():
            hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()}).last_hidden_state
        return mean_pool(hidden.numpy(), batch["attention_mask"])

    refs = {k: ref(b) for k, b in batches.items()}
    stem = model_dir.stem
    for name in (f"{stem}.onnx", f"{stem}.int8.onnx"):
        path = fixed / name
        if not path.exists():
            continue
        sess = _ort(path)
        row = {"bytes": sum(f.stat().st_size for f in fixed.glob(name + "*"))}
        row["vs_safetensors"] = round(row["bytes"] / out["safetensors_bytes"], 3)
        for k, b in batches.items():
            emb, names = _embed_onnx(sess, b)
            row["inputs"] = names
            row[f"mean_cosine_{k}"] = round(float(cosines(refs[k], emb).mean()), 5)
        out[name] = row

    # an export that keeps the interface + ORT's default dynamic quantization
    full = work / "full.onnx"
    b = batches["longest"]
    args = tuple(torch.from_numpy(b[k][:2]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    dyn = {k: {0: "batch", 1: "sequence"} for k in ("input_ids", "attention_mask", "token_type_ids")}

    class Keywords(torch.nn.Module):  # positional order of forward() differs across versions
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    torch.onnx.export(Keywords(model), args, str(full), input_names=list(dyn),
                      output_names=["last_hidden_state"],
                      dynamic_axes=dyn, opset_version=17, dynamo=False)  # fmt: skip
    q = work / "full.qdefault.onnx"
    quantize_dynamic(str(full), str(q))
    for label, path in (("export_with_mask_fp32", full), ("ort_default_quantize_dynamic", q)):
        sess = _ort(path)
        row = {
            "bytes": path.stat().st_size,
            "vs_safetensors": round(path.stat().st_size / out["safetensors_bytes"], 3),
        }
        for k, bb in batches.items():
            emb, names = _embed_onnx(sess, bb)
            row["inputs"] = names
            row[f"mean_cosine_{k}"] = round(float(cosines(refs[k], emb).mean()), 5)
        out[label] = row

    # batch 32 latency, interleaved: PyTorch fp32 vs the two int8 models
    bb = batches["max128"]
    runners = {"pytorch_fp32": lambda: ref(bb)}
    for label, path in (("mlaudit_int8", fixed / f"{stem}.int8.onnx"), ("ort_default_int8", q)):
        if path.exists():
            sess = _ort(path)
            runners[label] = lambda sess=sess: _embed_onnx(sess, bb)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(5):
        for k, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    out["batch32_seq128_p50_ms"] = {k: round(float(np.median(v)) * 1e3, 1) for k, v in times.items()}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
