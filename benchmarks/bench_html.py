"""HTML scan report of a generated 500-tensor checkpoint: render time, file size, open time.

Targets (issue 14): the report stays under 2 MB and opens in headless Chromium in under a
second (navigation start to the load event, network blocked). Render time is measured in
process, side by side with the JSON render of the same Report (the machine is shared and
noisy, so the ratio is the number to compare across runs); the matplotlib import is timed
once, as a text scan never pays it.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCKS = 100  # x 5 tensors = 500
TARGET_BYTES = 2_000_000
TARGET_OPEN_MS = 1000.0
REPEATS = 3


def _checkpoint(path: Path) -> None:
    """A transformer-like safetensors file: 100 blocks of q/k/v/o weights and a norm, seeded,
    with one NaN tensor and one tensor with dead rows so the flagged markers are drawn."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(14)
    tensors = {}
    for b in range(BLOCKS):
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[f"model.layers.{b}.attn.{name}.weight"] = rng.normal(0, 0.02, (64, 64)).astype(np.float32)
        tensors[f"model.layers.{b}.norm.weight"] = np.ones(64, dtype=np.float32)
    tensors["model.layers.7.attn.v_proj.weight"][3, 5] = np.nan
    tensors["model.layers.42.attn.o_proj.weight"][:8] = 0.0
    save_file(tensors, str(path))


def run() -> dict:
    from mlaudit.catalog import load_catalog
    from mlaudit.engine import scan
    from mlaudit.inputs.session import ScanOptions
    from mlaudit.report import json_format

    out: dict = {"tensors": BLOCKS * 5}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.safetensors"
        _checkpoint(ckpt)
        codes = tuple(c for c, m in load_catalog().items() if m.status != "preview")
        report = scan([ckpt], ScanOptions(codes=codes))
        started = time.perf_counter()
        from mlaudit.report import html  # matplotlib comes in here, and only here

        out["import_html_s"] = round(time.perf_counter() - started, 3)
        json_s, html_s, text = [], [], ""
        for _ in range(REPEATS):
            buf = io.StringIO()
            t = time.perf_counter()
            json_format.render(report, buf)
            json_s.append(time.perf_counter() - t)
            buf = io.StringIO()
            t = time.perf_counter()
            html.render(report, buf)
            html_s.append(time.perf_counter() - t)
            text = buf.getvalue()
        out["render_json_s"] = round(statistics.median(json_s), 4)
        out["render_html_s"] = round(statistics.median(html_s), 3)
        out["render_ratio_html_to_json"] = round(out["render_html_s"] / max(out["render_json_s"], 1e-9), 1)
        out["html_bytes"] = len(text.encode())
        out["html_bytes_target"] = TARGET_BYTES
        out["html_bytes_ok"] = out["html_bytes"] < TARGET_BYTES
        out["charts"] = text.count("data-chart=")
        page = Path(tmp) / "report.html"
        page.write_text(text, encoding="utf-8")
        try:
            from tests.browserkit import chromium_path, visit
        except ImportError:  # playwright missing
            chromium_path = None  # type: ignore[assignment]
        if chromium_path is None or chromium_path() is None:
            out["open_ms"] = None
            out["open_note"] = "skipped: no chromium or no playwright (make browser; pip install -e '.[dev]')"
            return out
        RESULTS.mkdir(exist_ok=True)
        loads = []
        for i in range(REPEATS):
            v = visit(page, RESULTS / "html-500-tensors.png" if i == 0 else None)
            if v.errors or v.requests:
                out["open_problems"] = v.errors + v.requests
            loads.append(v.load_ms)
        out["open_ms"] = round(statistics.median(loads), 1)
        out["open_ms_all"] = [round(x, 1) for x in loads]
        out["open_ms_target"] = TARGET_OPEN_MS
        out["open_ok"] = out["open_ms"] < TARGET_OPEN_MS
        out["note"] = "measured on a shared 2-core machine under load; ratios are the comparable numbers"
    return out
