"""Run histories (MLH rules): what a run directory with 10,000 logged steps adds to a scan.

A small project (code, config) is scanned as a separate `mlaudit scan` process, alone and with
one run directory added per history format (HF trainer_state.json, Lightning metrics.csv,
TensorBoard events, MLflow file store), 10,000 training steps logged (loss, grad norm, LR) plus
an eval point every 50 steps. Scans alternate (base, with, base, with, ...) so that machine load
hits both alike; the result is the median added time and the ratio to the base scan.
Target (issue 17): under one second added.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 10_000
EVAL_EVERY = 50
REPEATS = 3


def _curve(step: int) -> tuple[float, float, float]:
    loss = 2.3 * math.exp(-step / 2000) + 0.05 + 0.02 * math.sin(step)
    return loss, 1.0 + 0.3 * math.cos(step / 7), 1e-3 * (1 - step / STEPS)


def _eval(step: int) -> float:
    return 2.3 * math.exp(-step / 2000) + 0.1


def _base(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "train.py").write_text("import torch\n\nprint('train')\n")
    (root / "config.yaml").write_text("lr: 0.001\nseed: 0\nbatch_size: 32\n")
    (root / "README.md").write_text("# bench project\n\nA project used to time scans.\n")


def _hf(run: Path) -> None:
    log = []
    for step in range(1, STEPS + 1):
        loss, grad, lr = _curve(step)
        log.append({"epoch": step / 100, "grad_norm": grad, "learning_rate": lr, "loss": loss, "step": step})
        if step % EVAL_EVERY == 0:
            log.append({"epoch": step / 100, "eval_loss": _eval(step), "eval_runtime": 0.1, "step": step})
    run.mkdir(parents=True)
    (run / "trainer_state.json").write_text(
        json.dumps({"global_step": STEPS, "max_steps": STEPS, "log_history": log}, indent=2)
    )


def _lightning(run: Path) -> None:
    folder = run / "lightning_logs" / "version_0"
    folder.mkdir(parents=True)
    rows = ["epoch,grad_norm,lr-Adam,step,train_loss,val_loss"]
    for step in range(1, STEPS + 1):
        loss, grad, lr = _curve(step)
        rows.append(f"{step // 100},{grad},{lr},{step},{loss},")
        if step % EVAL_EVERY == 0:
            rows.append(f"{step // 100},,,{step},,{_eval(step)}")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    (folder / "hparams.yaml").write_text("lr: 0.001\n")


def _tensorboard(run: Path) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run.mkdir(parents=True)
    writer = EventFileWriter(str(run))
    for step in range(1, STEPS + 1):
        loss, grad, lr = _curve(step)
        values = [("train_loss", loss), ("grad_norm", grad), ("lr-Adam", lr)]
        if step % EVAL_EVERY == 0:
            values.append(("val_loss", _eval(step)))
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values]
        )
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()


def _mlflow(run: Path) -> None:
    folder = run / "mlruns" / "1" / "0123456789abcdef"
    (folder / "metrics").mkdir(parents=True)
    (folder / "params").mkdir()
    (folder / "meta.yaml").write_text("run_id: 0123456789abcdef\nstatus: 3\n")
    (folder / "params" / "lr").write_text("0.001")
    series: dict[str, list[str]] = {"train_loss": [], "grad_norm": [], "lr": [], "val_loss": []}
    for step in range(1, STEPS + 1):
        loss, grad, lr = _curve(step)
        for name, v in (("train_loss", loss), ("grad_norm", grad), ("lr", lr)):
            series[name].append(f"1700000000000 {v} {step}")
        if step % EVAL_EVERY == 0:
            series["val_loss"].append(f"1700000000000 {_eval(step)} {step}")
    for name, lines in series.items():
        (folder / "metrics" / name).write_text("\n".join(lines) + "\n")


FORMATS = {"huggingface": _hf, "lightning_csv": _lightning, "tensorboard": _tensorboard, "mlflow": _mlflow}


def _scan_seconds(path: Path) -> float:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "mlaudit", "scan", str(path), "--isolated", "--quiet"],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if out.returncode not in (0, 1):
        raise RuntimeError(f"scan of {path} failed: {out.stderr.strip()[-300:]}")
    return elapsed


def run() -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench_history_"))
    try:
        base = work / "base"
        _base(base)
        results: dict = {
            "steps": STEPS,
            "eval_every": EVAL_EVERY,
            "repeats": REPEATS,
            "note": "separate scan processes, alternated; taken on a shared, loaded machine",
        }
        for name, write in FORMATS.items():
            with_run = work / name
            shutil.copytree(base, with_run)
            write(with_run / "run")
            size = sum(f.stat().st_size for f in (with_run / "run").rglob("*") if f.is_file())
            alone, added = [], []
            for _ in range(REPEATS):
                alone.append(_scan_seconds(base))
                added.append(_scan_seconds(with_run))
            a, b = statistics.median(alone), statistics.median(added)
            results[name] = {
                "history_mb": round(size / 1e6, 2),
                "scan_s": round(a, 3),
                "scan_with_run_s": round(b, 3),
                "added_s": round(b - a, 3),
                "ratio": round(b / a, 3),
                "under_1s": b - a < 1.0,
            }
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)
