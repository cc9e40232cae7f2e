"""Fleet scan (issue 15): --jobs 2 vs serial, cached re-run vs first, per-file cost by format.

1,000 generated checkpoints (fixtures/gen/fleet_corpus.py: mixed formats, ~15% malicious,
~10% broken) in a local folder, scanned by the CLI in child processes, side by side in one run
(the machine is shared: only ratios taken in the same run mean anything). Every mode's JSON
report must hold the same findings; the benchmark fails loudly otherwise.
Targets: --jobs 2 >= 1.7x serial throughput; cached re-run >= 20x faster than the first run.
Not measured here (not built): object storage (s3://) and Ray; see docs/scale.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = int(os.environ.get("FLEET_BENCH_FILES", "1000"))
WIDTHS = (64, 128, 256, 384)  # 16 kB .. 600 kB of fp32 per tensor: statistics do real work
SAMPLE_PER_FORMAT = 12


def _scan(root: Path, *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "mlaudit", "scan", str(root), "--isolated", "--format", "json",
           "--exit-zero"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"scan {args} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, json.loads(proc.stdout)


def _findings(report: dict) -> list:
    return [(f["code"], f["location"]["path"], f["message"]) for f in report["findings"]]


def _per_format(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Median wall time per file of the checkpoint reads (read, layout, statistics) by kind."""
    from mlaudit.catalog import load_catalog
    from mlaudit.engine import scan
    from mlaudit.inputs.session import ScanOptions

    codes = tuple(c for c, m in load_catalog().items()
                  if m.status != "preview" and c[:3] in ("MLS", "MLC", "MLA"))
    by_kind: dict[str, list[Path]] = {}
    for p in paths:
        by_kind.setdefault(p.name.rsplit("-", 1)[0], []).append(p)
    out = {}
    for kind, files in sorted(by_kind.items()):
        times, sizes = [], []
        for p in files[:SAMPLE_PER_FORMAT]:
            t = time.perf_counter()
            try:
                scan([p], ScanOptions(codes=codes, jobs=1))
            except Exception:  # noqa: BLE001 - a broken file named directly aborts (exit 2): still timed
                pass
            times.append(time.perf_counter() - t)
            sizes.append(p.stat().st_size)
        out[kind] = {"files": len(times), "median_ms": round(1000 * statistics.median(times), 2),
                     "median_kb": round(statistics.median(sizes) / 1000, 1)}
    return out


def run() -> dict:
    sys.path.insert(0, str(ROOT))
    from fixtures.gen.fleet_corpus import build_registry

    with tempfile.TemporaryDirectory(prefix="mlaudit-fleet-") as tmp:
        reg = Path(tmp) / "registry"
        t = time.perf_counter()
        paths = build_registry(reg, FILES, seed=15, widths=WIDTHS)
        build_s = time.perf_counter() - t
        total_bytes = sum(p.stat().st_size for p in paths)
        _scan(reg, "--jobs", "1")  # warm the page cache and bytecode: every mode reads warm files
        serial_s, serial = _scan(reg, "--jobs", "1")
        jobs2_s, jobs2 = _scan(reg, "--jobs", "2")
        cache = Path(tmp) / "cache"
        cache.mkdir(mode=0o700)
        first_s, first = _scan(reg, "--jobs", "2", "--cache", str(cache))
        cached_s, cached = _scan(reg, "--jobs", "2", "--cache", str(cache))
        reports = {"serial": serial, "jobs2": jobs2, "cache_first": first, "cache_rerun": cached}
        same = {name: _findings(r) == _findings(serial) for name, r in reports.items()}
        if not all(same.values()):
            raise RuntimeError(f"findings differ between modes: {same}")
        # the scan's own fixed cost (imports, catalog): a scan of an empty folder
        empty = Path(tmp) / "empty"
        empty.mkdir()
        startup_s, _ = _scan(empty, "--jobs", "1")
        per_format = _per_format(paths)
    return {
        "files": FILES,
        "bytes": total_bytes,
        "build_s": round(build_s, 2),
        "findings": len(serial["findings"]),
        "identical_findings": same,
        "serial_s": round(serial_s, 2),
        "jobs2_s": round(jobs2_s, 2),
        "jobs2_speedup": round(serial_s / jobs2_s, 2),
        "jobs2_speedup_net_of_startup": round((serial_s - startup_s) / (jobs2_s - startup_s), 2),
        "cache_first_s": round(first_s, 2),
        "cache_rerun_s": round(cached_s, 2),
        "cache_speedup": round(first_s / cached_s, 2),
        "startup_s": round(startup_s, 2),
        "cpus": len(os.sched_getaffinity(0)),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "per_format": per_format,
    }
