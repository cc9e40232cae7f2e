"""Issue 13: a scan costs about what its imports cost, not torch's.

All ratios are measured side by side in one run (commands interleaved, median of repeats),
because the build machine is shared and its speed changes minute to minute:

- `small_scan`: `mlaudit scan FILE` of one small checkpoint per format (torch zip, legacy,
  safetensors, ONNX, TorchScript, .pt2) against `python -c "import numpy, yaml, rich, typer"`
  (target <= 3x), and whether the scan imported torch / onnx / onnxruntime.
- `corpus_scan`: a directory scan of the checkpoint-safety corpus against picklescan's whole
  process on the same directory (target <= 1.5x), and whether mlaudit named every malicious file.
- `stats_1gib`: `mlaudit scan` of a 1 GiB safetensors and torch-zip checkpoint (statistics
  rules) against `cat FILE` plus the import baseline (target <= 4x); peak RSS against the
  largest tensor + 150 MB.
- `core_install`: a fresh virtualenv with the core install (`pip install .`, no torch) and a
  fresh pre-commit hook environment, each timed (target <= 30 s together).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "build" / "corpus"
MB = 1024 * 1024
REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
HEAVY = ("torch", "onnx", "onnxruntime")
# Children may cache bytecode, as any installed package does (pip compiles on install); this
# build machine sets PYTHONDONTWRITEBYTECODE, which made every run recompile all of mlaudit.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# The statistics as mlaudit computed them before issue 13 (torch), for the same file: the
# "before" column, measured side by side. Prints wall seconds and this process's VmHWM.
_TORCH_PATH = r"""
import sys, time
t = time.perf_counter()
from pathlib import Path
from mlaudit.inputs.checkpoint import read_checkpoint
from mlaudit.inputs.checkpoint.layout import build_layout
from mlaudit.inputs.checkpoint.torch_stats import compute_stats
p = Path(sys.argv[1])
stats = compute_stats(build_layout(read_checkpoint(p, p.name), None))
hwm = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(len(stats.tensors), time.perf_counter() - t, hwm)
"""

_WRITE_SMALL = r"""
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
d = Path(sys.argv[1])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
sd = model.state_dict()
torch.save(sd, d / "small_zip.pt")
torch.save(sd, d / "small_legacy.pt", _use_new_zipfile_serialization=False)
save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "small.safetensors"))
torch.jit.script(model).save(str(d / "small_script.pt"))
torch.onnx.export(model, (torch.randn(1, 16),), str(d / "small.onnx"), dynamo=False)
try:
    torch.export.save(torch.export.export(model, (torch.randn(1, 16),)), str(d / "small.pt2"))
except Exception as err:  # torch.export is optional for this benchmark
    print("no .pt2:", err, file=sys.stderr)
"""

_WRITE_BIG = r"""
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
d = Path(sys.argv[1])
g = torch.Generator().manual_seed(0)
big = {f"layers.{i}.weight": torch.randn(4096, 4096, generator=g) for i in range(16)}
save_file(big, str(d / "big.safetensors"))
torch.save(big, d / "big.pt")
"""

_IMPORTS = r"""
import runpy, sys
sys.argv = ["mlaudit"] + sys.argv[1:]
try:
    runpy.run_module("mlaudit", run_name="__main__")
except SystemExit:
    pass
finally:
    print("\nIMPORTED=" + ",".join(m for m in HEAVY if m in sys.modules), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def _child_rss(cmd: list[str], keep_output: bool = False,
               env: dict[str, str] | None = None) -> tuple[float, int, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS bytes, process) of one child. Output is discarded unless asked
    for: read into this process it would grow this process, and a forked child's ru_maxrss
    starts from its parent's size (cat of 1 GiB into a pipe made every later child "1 GB").
    The child's CPU seconds (user + system, its own children included) are in `LAST_CPU[0]`."""
    sink = subprocess.PIPE if keep_output else subprocess.DEVNULL
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=sink, stderr=sink, cwd=ROOT, env=env or ENV)
    out, err = proc.communicate() if keep_output else (b"", b"")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, subprocess.CompletedProcess(cmd, code, out, err)


LAST_CPU = [0.0]


def _side_by_side(cmds: dict[str, list[str]], repeats: int = REPEATS,
                  cpu: dict[str, list[float]] | None = None,
                  envs: dict[str, dict[str, str]] | None = None) -> dict[str, list[float]]:
    """Run the commands interleaved `repeats` times; wall seconds per command. With `cpu`,
    also each run's CPU seconds there: on a loaded machine wall time mostly measures the
    wait for a core, CPU time what the command itself costs. `envs`: per-command env."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    envs = envs or {}
    for key, cmd in cmds.items():  # warm-up: bytecode caches, page cache
        _child_rss(cmd, env=envs.get(key))
    for _ in range(repeats):
        for key, cmd in cmds.items():
            wall, _, _ = _child_rss(cmd, env=envs.get(key))
            times[key].append(wall)
            if cpu is not None:
                cpu.setdefault(key, []).append(LAST_CPU[0])
    return times


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 4)


def _scan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlaudit", "scan", *args, "--isolated", "--exit-zero", "-q"]


def _imported(path: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _IMPORTS, "scan", str(path), "--isolated", "-q"],
                          capture_output=True, text=True, cwd=ROOT, env=ENV)
    line = [x for x in proc.stderr.splitlines() if x.startswith("IMPORTED=")]
    return [m for m in line[-1].removeprefix("IMPORTED=").split(",") if m] if line else ["?"]


def small_scan(tmp: Path) -> dict:
    subprocess.run([sys.executable, "-c", _WRITE_SMALL, str(tmp)], check=True, capture_output=True)
    files = {"torch_zip": "small_zip.pt", "torch_legacy": "small_legacy.pt",
             "safetensors": "small.safetensors", "onnx": "small.onnx",
             "torchscript": "small_script.pt", "pt2": "small.pt2"}
    files = {k: tmp / v for k, v in files.items() if (tmp / v).exists()}
    cmds = {"baseline": [sys.executable, "-c", "import numpy, yaml, rich, typer"]}
    cmds.update({k: _scan_cmd(str(p)) for k, p in files.items()})
    times = _side_by_side(cmds)
    base = statistics.median(times["baseline"])
    out: dict = {"baseline_import_s": round(base, 4), "target_ratio": 3.0}
    for key, path in files.items():
        out[key] = {"scan_s": _med(times[key]), "ratio": round(statistics.median(times[key]) / base, 2),
                    "imports_heavy": _imported(path)}
    return out


def corpus_scan() -> dict:
    if not CORPUS.is_dir():
        return {"skipped": "fixtures/build/corpus missing (run `make fixtures`)"}
    picklescan = shutil.which("picklescan", path=str(Path(sys.executable).parent))
    cmds = {"mlaudit": _scan_cmd(str(CORPUS))}  # every rule, as a user runs it
    # a first run: no parsed rule catalog in the user cache dir yet (mlaudit/catalog.py)
    cmds["mlaudit_no_catalog_cache"] = cmds["mlaudit"]
    envs = {"mlaudit_no_catalog_cache": {**ENV, "MLAUDIT_NO_CACHE": "1"}}
    if picklescan:
        cmds["picklescan"] = [picklescan, "-p", str(CORPUS)]
    cpu: dict[str, list[float]] = {}
    times = _side_by_side(cmds, max(3, REPEATS // 2), cpu=cpu, envs=envs)
    out: dict = {"files": sum(1 for p in CORPUS.rglob("*") if p.is_file()),
                 "mlaudit_s": _med(times["mlaudit"]), "target_ratio": 1.5,
                 "mlaudit_no_catalog_cache_s": _med(times["mlaudit_no_catalog_cache"]),
                 "cpu_s": {k: _med(v) for k, v in cpu.items()}}
    if picklescan:
        out["picklescan_s"] = _med(times["picklescan"])
        out["ratio"] = round(statistics.median(times["mlaudit"]) / statistics.median(times["picklescan"]), 2)
        out["cpu_ratio"] = round(statistics.median(cpu["mlaudit"]) / statistics.median(cpu["picklescan"]), 2)
    else:
        out["picklescan_s"] = None
        out["note"] = "picklescan not installed in this venv (make bench installs it)"
    report = subprocess.run([*_scan_cmd(str(CORPUS)), "--format", "json"],
                            capture_output=True, text=True, cwd=ROOT)
    findings = json.loads(report.stdout).get("findings", [])
    flagged = {f["location"]["path"].replace("\\", "/").split("/")[-1]
               for f in findings if f["code"].startswith("MLS") and f["severity"] == "error"}
    malicious = sorted(p.name for p in (CORPUS / "malicious").iterdir())
    missed = [m for m in malicious if m not in flagged]
    out["malicious_files"] = len(malicious)
    out["malicious_missed"] = missed
    return out


def stats_1gib(tmp: Path) -> dict:
    subprocess.run([sys.executable, "-c", _WRITE_BIG, str(tmp)], check=True, capture_output=True)
    largest = 4096 * 4096 * 4
    out: dict = {"largest_tensor_mb": largest // MB, "target_ratio": 4.0,
                 "rss_budget_mb": (largest + 150 * MB) // MB}
    base_cmd = [sys.executable, "-c", "import numpy, yaml, rich, typer"]
    for label, name in (("safetensors", "big.safetensors"), ("torch_zip", "big.pt")):
        path = tmp / name
        subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm cache
        cmd = _scan_cmd(str(path), "--select", "MLC,MLG")
        walls: dict[str, list[float]] = {"cat": [], "startup": [], "scan": []}
        rss = []
        torch_runs = []
        for _ in range(3):
            walls["cat"].append(_child_rss(["cat", str(path)])[0])
            walls["startup"].append(_child_rss(base_cmd)[0])
            wall, peak, proc = _child_rss(cmd)
            walls["scan"].append(wall)
            rss.append(peak)
            before = subprocess.run([sys.executable, "-c", _TORCH_PATH, str(path)], capture_output=True,
                                    text=True, cwd=ROOT, env=ENV)
            if before.returncode == 0:
                torch_runs.append([float(x) for x in before.stdout.split()])
        ref = statistics.median(walls["cat"]) + statistics.median(walls["startup"])
        # the statistics must really have run (a refused or failed file would be fast)
        check = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, cwd=ROOT)
        doc = json.loads(check.stdout)
        stats_ran = any(a["kind"] == "checkpoint-stats" for a in doc["artifacts"])
        out[label] = {"stats_ran": stats_ran,
                      "inconclusive": [f["message"] for f in doc["findings"] if f["code"] == "MLA002"],
                      "cat_s": _med(walls["cat"]), "startup_s": _med(walls["startup"]),
                      "scan_s": _med(walls["scan"]),
                      "ratio": round(statistics.median(walls["scan"]) / ref, 2),
                      "peak_rss_mb": round(min(rss) / MB, 1),
                      "rss_within_budget": min(rss) <= largest + 150 * MB,
                      "exit_code": proc.returncode}
        if torch_runs:  # before: torch imports + torch statistics, in-process wall and VmHWM
            out[label]["torch_path_s"] = round(statistics.median(r[1] for r in torch_runs), 3)
            out[label]["torch_path_peak_rss_mb"] = round(min(r[2] for r in torch_runs) / MB, 1)
        path.unlink()
    return out


def core_install(tmp: Path) -> dict:
    """Fresh venv + `pip install .` (core, no torch), then a fresh pre-commit hook env."""
    venv = tmp / "venv"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    venv_s = time.perf_counter() - t
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, str(ROOT)], capture_output=True, text=True)
    install_s = time.perf_counter() - t
    out: dict = {"core_install_s": round(install_s, 2), "venv_s": round(venv_s, 2),
                 "pip_install_s": round(install_s - venv_s, 2), "ok": proc.returncode == 0, "target_s": 30}
    if proc.returncode:
        out["error"] = proc.stderr.strip().splitlines()[-1:]
        return out
    has_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"],
                               capture_output=True).returncode == 0
    out["torch_installed"] = has_torch
    picklescan = shutil.which("picklescan", path=str(Path(sys.executable).parent))
    if CORPUS.is_dir() and picklescan:
        # the security corpus again, scanned by the core install (what the pre-commit hook and
        # the Action run: fewer installed distributions, no torch) against picklescan
        core_mlaudit = [str(venv / "bin" / "mlaudit"), "scan", str(CORPUS), "--isolated", "--exit-zero", "-q"]
        cpu: dict[str, list[float]] = {}
        times = _side_by_side({"mlaudit_core": core_mlaudit, "picklescan": [picklescan, "-p", str(CORPUS)]},
                              max(3, REPEATS // 2), cpu=cpu)
        ours, theirs = statistics.median(times["mlaudit_core"]), statistics.median(times["picklescan"])
        cpu_ours, cpu_theirs = statistics.median(cpu["mlaudit_core"]), statistics.median(cpu["picklescan"])
        out["corpus_scan_core_install"] = {
            "mlaudit_s": round(ours, 4), "picklescan_s": round(theirs, 4), "ratio": round(ours / theirs, 2),
            "cpu_s": {"mlaudit_core": round(cpu_ours, 4), "picklescan": round(cpu_theirs, 4)},
            "cpu_ratio": round(cpu_ours / cpu_theirs, 2),
        }
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if not pre_commit:
        out["pre_commit"] = "pre-commit not installed in this venv (make bench installs it)"
        return out
    # The hook as a user gets it: pre-commit clones this repository at HEAD and builds its env.
    project = tmp / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    import numpy as np

    np.save(project / "w.npy", np.zeros((4, 4), dtype=np.float32))
    subprocess.run(["git", "-C", str(project), "add", "w.npy"], check=True)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp / "pre-commit-home")}
    t = time.perf_counter()
    hook = subprocess.run([pre_commit, "try-repo", str(ROOT), "mlaudit", "--files", "w.npy"],
                          capture_output=True, text=True, cwd=project, env=env)
    out["pre_commit_first_run_s"] = round(time.perf_counter() - t, 2)
    out["pre_commit_exit"] = hook.returncode  # 1 when the hook reports findings or fails
    out["pre_commit_tail"] = (hook.stdout + hook.stderr).strip().splitlines()[-3:]
    out["total_s"] = round(install_s + out["pre_commit_first_run_s"], 2)
    return out


def run() -> dict:
    wanted = os.environ.get("BENCH_LIGHT", "small,corpus,stats,core").split(",")
    results: dict = {"note": "shared, loaded build machine: ratios are taken side by side in one run"}
    with tempfile.TemporaryDirectory(prefix="mlaudit-light-") as tmp:
        tmp_path = Path(tmp)
        for name, fn in (("small_scan", lambda: small_scan(tmp_path)), ("corpus_scan", corpus_scan),
                         ("stats_1gib", lambda: stats_1gib(tmp_path)),
                         ("core_install", lambda: core_install(tmp_path))):
            if name.split("_")[0] in wanted or name in wanted:
                results[name] = fn()
                print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
