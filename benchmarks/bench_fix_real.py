"""`mlaudit fix` on real trained models that pip wheels ship (fixtures/realmodels.FIX_WHEELS):
a conv file-type classifier, OCR detector / recognizer / direction classifier, a stateful VAD
and an LSTM speaker encoder. Per model: exit code, the one-line outcome, and for a kept int8
model its size vs the input and per-op-family coverage. The point is "no internal error on any
input": every run ends fixed, refused with numbers, or refused with a reason.

Skipped with a note when the wheels cannot be fetched (no registry access).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SPEAKER_CLASS = '''
import torch


class SpeakerEncoder(torch.nn.Module):
    """A 3-layer LSTM over 40 mel channels, the last state through a linear layer + ReLU,
    L2-normalised (the layout of the checkpoint's model_state)."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        self.similarity_weight = torch.nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = torch.nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels):
        _, (hidden, _) = self.lstm(mels)
        embeds = torch.relu(self.linear(hidden[-1]))
        return embeds / (torch.norm(embeds, dim=1, keepdim=True) + 1e-5)
'''
SPEAKER_CONFIG = """model:
  _target_: speaker_model:SpeakerEncoder
  input_spec:
    - {shape: [frames, 40], dtype: float32, dims: {frames: 160}}
"""


def _run(args: list[str]) -> dict:
    import os
    import resource
    import time

    load = [round(x, 2) for x in os.getloadavg()]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mlaudit", "fix", *args], capture_output=True, text=True)
    last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    row: dict = {"exit": proc.returncode, "line": last[-1][:300] if last else ""}
    row["wall_s"], row["load_before"] = round(time.perf_counter() - t0, 1), load
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    row["cpu_s"] = round(cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime, 1)
    row["internal_error"] = "internal error" in proc.stderr or "Traceback" in proc.stderr
    return row


def _summarise(row: dict, out: Path) -> dict:
    report = out / "fix-report.json"
    if not report.exists():
        return row
    data = json.loads(report.read_text())
    rows = {v["name"]: v for v in data["variants"]}
    step = next((s for s in data["steps"] if s["name"].startswith("int8")), None)
    if step is not None:
        row["int8_status"] = step["status"]
        row["int8_detail"] = step["detail"][:300]
        row["families"] = step["evidence"].get("families")
        row["trials"] = step["evidence"].get("trials")
        row["budget_failure"] = step.get("budget_failure")
    if "onnx int8" in rows and rows["input"].get("size_bytes"):
        row["int8_vs_input_size"] = round(rows["onnx int8"]["size_bytes"] / rows["input"]["size_bytes"], 3)
        row["int8_mean_cosine"] = rows["onnx int8"].get("fidelity", {}).get("mean_cosine")
    row["warnings"] = len(data.get("warnings", []))
    return row


def run() -> dict:
    try:
        from fixtures.realmodels import FIX_WHEELS, Unavailable, fetch

        files = {f.model.member.rsplit("/", 1)[-1]: f.path for f in fetch(wheels=FIX_WHEELS)}
    except Unavailable as err:
        return {"skipped": str(err)}
    work = Path(tempfile.mkdtemp(prefix="bench-fix-real-"))
    common = ["--threads", "1", "--measure-seconds", "0.3", "--keep-failed", "--force"]
    jobs = {
        "magika_conv_classifier": ([str(files["model.onnx"]), "--apply", "int8"], None),
        "ocr_detector": ([str(files["ch_PP-OCRv4_det_infer.onnx"]), "--apply", "int8"], None),
        "ocr_recognizer": ([str(files["ch_PP-OCRv4_rec_infer.onnx"]), "--apply", "int8"], None),
        "ocr_direction_cls": ([str(files["ch_ppocr_mobile_v2.0_cls_infer.onnx"]), "--apply", "int8"], None),
        "vad_stateful": ([str(files["silero_vad_16k_op15.onnx"]), "--apply", "int8"], None),
        "speaker_lstm_strip": ([str(files["pretrained.pt"])], None),
    }
    spk = work / "speaker"
    spk.mkdir()
    (spk / "speaker_model.py").write_text(SPEAKER_CLASS)
    (spk / "speaker.yaml").write_text(SPEAKER_CONFIG)
    jobs["speaker_lstm_int8"] = (
        [
            str(files["pretrained.pt"]),
            "--config",
            str(spk / "speaker.yaml"),
            "--run-model",
            "--apply",
            "onnx,int8",
        ],
        spk,
    )
    out: dict = {}
    for name, (args, _folder) in jobs.items():
        target = work / name
        row = _run([*args, "--out", str(target), *common])
        out[name] = _summarise(row, target)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
