"""Whole-process scan time on a generated tree of small Python files and configs, side by side
with `ruff check --no-cache` on the same tree (issue 18: target <= 4x ruff).

The tree is generated fresh in a temporary folder (seeded, so every run scans the same
code): `files` small training-style modules spread over packages, and `configs` YAML
training configs. Both tools run as separate processes, alternately, `repeats` times; the
ratio is taken from the medians measured in the same run, because the machine is shared
and absolute times drift. MLAUDIT_BENCH_FILES scales the tree (default 20,000),
MLAUDIT_BENCH_REPEATS the number of alternating runs (default 3). Children may write
bytecode caches as an installed mlaudit would (MLAUDIT_BENCH_NO_BYTECODE=1 keeps
PYTHONDONTWRITEBYTECODE from the calling shell); the load average is recorded with the times.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = int(os.environ.get("MLAUDIT_BENCH_FILES", "20000"))
CONFIGS = 200
REPEATS = int(os.environ.get("MLAUDIT_BENCH_REPEATS", "3"))
TARGET_RATIO = 4.0

MODULE = '''"""Module {i}: a small piece of a training project."""
import argparse
import os

import numpy as np
import torch
from torch import nn

from {pkg} import helpers_{h}


class Block{i}(nn.Module):
    def __init__(self, width: int = {w}) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, {w2}))

    def forward(self, x):
        return self.net(x)


def train_{i}(model, loader, opt, epochs: int = {e}):
    for epoch in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
    return model


def evaluate_{i}(model, loader):
    model.eval()
    with torch.no_grad():
        return float(np.mean([model(x).mean().item() for x, _ in loader]))


def save_{i}(model, path: str) -> None:
    torch.save(model.state_dict(), os.path.join(path, "block_{i}.pt"))
'''

CONFIG = """seed: {seed}
learning_rate: {lr}
num_train_epochs: {epochs}
per_device_train_batch_size: {bs}
weight_decay: 0.01
max_grad_norm: 1.0
bf16: true
eval_strategy: steps
"""


def generate(root: Path, files: int = FILES, configs: int = CONFIGS, seed: int = 18) -> None:
    """Write the benchmark tree under `root` (deterministic for a given seed)."""
    rng = random.Random(seed)
    per_pkg = 200
    for i in range(files):
        pkg = f"pkg{i // per_pkg:03d}"
        d = root / pkg
        if i % per_pkg == 0:
            d.mkdir(parents=True, exist_ok=True)
            (d / "__init__.py").write_text("")
            for h in range(3):
                (d / f"helpers_{h}.py").write_text(f"def helper_{h}(x):\n    return x * {h + 1}\n")
        text = MODULE.format(i=i, pkg=pkg, h=rng.randrange(3), w=rng.choice([16, 32, 64]),
                             w2=rng.choice([1, 10]), e=rng.randrange(1, 10))
        (d / f"mod_{i:05d}.py").write_text(text)
    cfg_dir = root / "configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    for i in range(configs):
        text = CONFIG.format(seed=i, lr=rng.choice([1e-4, 3e-4, 1e-3]), epochs=rng.randrange(1, 5),
                             bs=rng.choice([8, 16, 32]))
        (cfg_dir / f"run_{i:03d}.yaml").write_text(text)
    (root / "requirements.txt").write_text("torch==2.3.1\nnumpy==1.26.4\n")


def _env() -> dict[str, str]:
    """The children's environment: bytecode caching as in a normal install (a development shell
    with PYTHONDONTWRITEBYTECODE would recompile mlaudit's modules on every run)."""
    env = dict(os.environ)
    if not os.environ.get("MLAUDIT_BENCH_NO_BYTECODE"):
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["MLAUDIT_NO_PROGRESS"] = "1"
    return env


def _time(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-400:]}")
    return wall


def _ruff() -> str | None:
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.exists() else shutil.which("ruff")


def run() -> dict:
    """Generate the tree, time both tools side by side, return the numbers."""
    ruff = _ruff()
    with tempfile.TemporaryDirectory(prefix="mlaudit-bench-scan-") as tmp:
        root = Path(tmp) / "tree"
        generate(root)
        mlaudit_cmd = [sys.executable, "-m", "mlaudit", "scan", ".", "--isolated", "--exit-zero", "-q"]
        ruff_cmd = [ruff, "check", "--no-cache", "--isolated", "--exit-zero", "-q", "."] if ruff else None
        ours, theirs = [], []
        for _ in range(REPEATS):
            ours.append(_time(mlaudit_cmd, root))
            if ruff_cmd:
                theirs.append(_time(ruff_cmd, root))
    out = {"files": FILES, "configs": CONFIGS, "repeats": REPEATS, "cpus": os.cpu_count(),
           "loadavg_1m_after": round(os.getloadavg()[0], 2),
           "bytecode_cache": not os.environ.get("MLAUDIT_BENCH_NO_BYTECODE"),
           "mlaudit_s": [round(t, 2) for t in ours],
           "mlaudit_median_s": round(statistics.median(ours), 2)}
    if theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        out.update(ruff_s=[round(t, 2) for t in theirs], ruff_median_s=round(statistics.median(theirs), 2),
                   ratio=round(ratio, 2), target_ratio=TARGET_RATIO, within_target=ratio <= TARGET_RATIO)
    else:
        out["ruff"] = "not installed: no ratio"
    return out


if __name__ == "__main__":
    print(run())
