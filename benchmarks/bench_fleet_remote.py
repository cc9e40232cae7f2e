"""Fleet scan from object storage (issue 15): 1,000 generated checkpoints in a local S3 server.

moto's S3 server runs in this process on 127.0.0.1; the CLI runs in child processes with the
real s3fs client and fake credentials, side by side in one run (only ratios taken in the same
run mean anything on a shared machine). Modes: serial, `--jobs 2`, Ray with 2 workers (a local
cluster started by mlaudit, and a running cluster joined with `--ray-address`), a first and a
cached run, and a security sweep (`--select MLS,MLA`) whose bytes read per safetensors file
are compared with each file's header size. Every mode must report the findings of a scan of
the same files on local disk; the benchmark fails loudly otherwise.
Targets: Ray 2 workers within 25% of --jobs 2; cached re-run >= 20x faster than the first;
bytes read per safetensors file <= header + 64 kB.
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
FILES = int(os.environ.get("FLEET_BENCH_FILES", "1000"))
WIDTHS = (64, 128, 256, 384)  # as bench_fleet: 16 kB .. 600 kB of fp32 per tensor
BUCKET = "fleet-bench"


def _scan(target: str, env: dict[str, str], *args: str) -> tuple[float, dict]:
    """Wall time of one CLI scan in `--format jsonl` (the fleet format: one record a line, the
    C JSON encoder; the indented JSON document costs ~1 s to write for this corpus), and its
    records as {"findings": [...], "checkpoints": [...]}."""
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "mlaudit", "scan", target, "--isolated", "--format", "jsonl", "--exit-zero"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"scan {target} {args} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return wall, {"findings": [r for r in records if r["type"] == "finding"],
                  "checkpoints": [r for r in records if r["type"] == "checkpoint"]}


def _findings(report: dict, prefix: str) -> list:
    def rel(path: str) -> str:
        return "." if path in (prefix.rstrip("/"), ".") else path.removeprefix(prefix)

    return sorted((f["code"], rel(f["location"]["path"]), f["message"]) for f in report["findings"])


def _header_sizes(reg: Path) -> dict[str, int]:
    out = {}
    for p in reg.rglob("*.safetensors"):
        data = p.read_bytes()[:8]
        if len(data) == 8:
            size = 8 + int.from_bytes(data, "little")
            if size <= p.stat().st_size:
                out[p.relative_to(reg).as_posix()] = size
    return out


def run() -> dict:
    try:
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        return {"skipped": f"needs moto[server] and s3fs (the dev extra): {err}"}
    sys.path.insert(0, str(ROOT))
    from fixtures.gen.fleet_corpus import build_registry

    has_ray = shutil.which("ray", path=str(Path(sys.executable).parent)) is not None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "MLAUDIT_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    saved = dict(os.environ)
    os.environ.update(env)  # the upload here and a `ray start` cluster see the server too
    ray_started = False
    try:
        with tempfile.TemporaryDirectory(prefix="mlaudit-fleet-s3-") as tmp:
            reg = Path(tmp) / "registry"
            paths = build_registry(reg, FILES, seed=15, widths=WIDTHS)
            total = sum(p.stat().st_size for p in paths)
            fs = s3fs.S3FileSystem(skip_instance_cache=True)
            fs.mkdir(BUCKET)
            t = time.perf_counter()
            fs.put(str(reg) + "/", f"{BUCKET}/registry/", recursive=True)
            upload_s = time.perf_counter() - t
            url = f"s3://{BUCKET}/registry"
            prefix = url + "/"
            _, local = _scan(str(reg), env, "--jobs", "1")
            local_prefix = str(reg).rstrip("/") + "/"
            try:
                local_prefix = reg.relative_to(ROOT).as_posix() + "/"
            except ValueError:
                pass
            want = _findings(local, local_prefix)
            load: dict[str, float] = {}
            times: dict[str, float] = {}
            reports: dict[str, dict] = {}

            def mode(name: str, *args: str) -> None:
                load[name] = round(os.getloadavg()[0], 2)
                times[name], reports[name] = _scan(url, env, *args)

            mode("serial", "--jobs", "1")
            mode("jobs2", "--jobs", "2")
            if has_ray:
                mode("ray2_local_cluster", "--jobs", "2", "--executor", "ray")
                ray_bin = str(Path(sys.executable).parent / "ray")
                subprocess.run([ray_bin, "start", "--head", "--num-cpus", "2", "--include-dashboard=false",
                                "--disable-usage-stats"], env=env, check=True, capture_output=True)
                ray_started = True
                mode("ray2_running_cluster", "--executor", "ray", "--ray-address", "auto")
            cache = Path(tmp) / "cache"
            cache.mkdir(mode=0o700)
            mode("cache_first", "--jobs", "2", "--cache", str(cache))
            mode("cache_rerun", "--jobs", "2", "--cache", str(cache))
            same = {name: _findings(r, prefix) == want for name, r in reports.items()}
            if not all(same.values()):
                raise RuntimeError(f"findings differ from the local scan: {same}")
            # security sweep: header rules only, so no tensor file is downloaded whole
            sweep_s, sweep = _scan(url, env, "--jobs", "2", "--select", "MLS,MLA")
            headers = _header_sizes(reg)
            over: list[int] = []
            ratios: list[float] = []
            sizes: list[int] = []
            for a in sweep["checkpoints"]:
                rel = a["path"].removeprefix(prefix)
                if rel in headers:
                    read = a["remote"]["bytes_read"]
                    over.append(read - headers[rel])
                    ratios.append(read / (reg / rel).stat().st_size)
                    sizes.append((reg / rel).stat().st_size)
            # bytes read for the security scan and inventory of every checkpoint (the whole
            # downloads that statistics need afterwards are not in this count)
            header_bytes = sum(a.get("remote", {}).get("bytes_read", 0)
                               for a in reports["serial"]["checkpoints"])
            # the same corpus on local disk, cached, in this run: the local side of the ratio
            local_cache = Path(tmp) / "local-cache"
            local_cache.mkdir(mode=0o700)
            load["local_cache_first"] = round(os.getloadavg()[0], 2)
            times["local_cache_first"], _ = _scan(str(reg), env, "--jobs", "2", "--cache", str(local_cache))
            load["local_cache_rerun"] = round(os.getloadavg()[0], 2)
            times["local_cache_rerun"], again = _scan(str(reg), env, "--jobs", "2", "--cache",
                                                      str(local_cache))
            if _findings(again, local_prefix) != want:
                raise RuntimeError("the cached local re-run reports other findings")
            empty = Path(tmp) / "empty"
            empty.mkdir()
            times["startup_empty_folder"], _ = _scan(str(empty), env, "--jobs", "1")
    finally:
        if ray_started:
            subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], env=env,
                           capture_output=True, check=False)
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
    out = {
        "files": FILES,
        "bytes": total,
        "upload_s": round(upload_s, 2),
        "findings": len(want),
        "identical_findings_to_local_scan": same,
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "load_avg_1m_at_start": load,
        "jobs2_speedup": round(times["serial"] / times["jobs2"], 2),
        "cache_speedup": round(times["cache_first"] / times["cache_rerun"], 2),
        "security_sweep_s": round(sweep_s, 2),
        "safetensors_files": len(over),
        "safetensors_bytes_over_header_max": max(over) if over else None,
        "safetensors_bytes_over_header_median": statistics.median(over) if over else None,
        "safetensors_fraction_of_file_read_median": round(statistics.median(ratios), 3) if ratios else None,
        "safetensors_median_size": statistics.median(sizes) if sizes else None,
        "checkpoint_bytes_read_for_security_scan": header_bytes,
        "local_cache_speedup": round(times["local_cache_first"] / times["local_cache_rerun"], 2),
        "cpus": len(os.sched_getaffinity(0)),
    }
    for name in ("ray2_local_cluster", "ray2_running_cluster"):
        if name in times:
            out[f"{name}_vs_jobs2"] = round(times[name] / times["jobs2"], 2)
    return out
