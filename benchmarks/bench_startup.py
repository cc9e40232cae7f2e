"""Start-up cost: `mlaudit --help` and a tensor-free scan of the sample project, each as a
ratio to `python -c "import typer, rich"` (target <= 1.5x)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "build" / "sample_project"
REPEATS = 15


def _median_wall(cmd: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run() -> dict:
    py = sys.executable
    baseline = _median_wall([py, "-c", "import typer, rich"])
    help_s = _median_wall([py, "-m", "mlaudit", "--help"])
    target = SAMPLE if SAMPLE.is_dir() else ROOT / "fixtures"
    # Docs/tests/repo rules only: the scan must not need tensors.
    scan_s = _median_wall([py, "-m", "mlaudit", "scan", str(target), "--isolated", "--select",
                           "MLK,MLX,MLV,MLR", "--exit-zero", "-q"])
    return {
        "baseline_import_typer_rich_s": round(baseline, 4),
        "help_s": round(help_s, 4),
        "help_ratio": round(help_s / baseline, 3),
        "docs_scan_s": round(scan_s, 4),
        "docs_scan_ratio": round(scan_s / baseline, 3),
        "docs_scan_target": str(target.relative_to(ROOT)),
        "target_ratio": 1.5,
        "repeats": REPEATS,
    }
