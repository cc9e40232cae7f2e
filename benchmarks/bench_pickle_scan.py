"""mlaudit's static checkpoint scan vs `picklescan` on the seeded corpus (fixtures/gen/attacks.py).

Per tool: scan time per file (median of REPEATS runs each; mean/median/max over files) and
detection counts: malicious files flagged, benign files wrongly flagged, malformed files
reported as errors versus passed silently as clean. picklescan is installed only for the
benchmark (`make bench` pip-installs it into .venv); without it its column says so.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

REPEATS = 3


def _median_time(fn, path: Path) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEATS):
        t = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def _mlaudit(path: Path) -> str:
    from mlaudit.inputs import InputError
    from mlaudit.inputs.checkpoint import read_checkpoint

    try:
        info = read_checkpoint(path, path.name)
    except InputError:
        return "error"
    if info.error_issues:
        return "flagged"
    return "error" if info.inconclusive else "clean"  # read, but MLA002: never clean


def _picklescan(path: Path) -> str:
    from picklescan.scanner import scan_file_path

    try:
        result = scan_file_path(str(path))
    except Exception:  # picklescan raises on some inputs; count that as an error report
        return "error"
    if result.issues_count or result.infected_files:
        return "flagged"
    return "error" if result.scan_err else "clean"


def _tool_stats(fn, groups: dict[str, list[Path]]) -> dict:
    per_file: dict[str, float] = {}
    verdicts: dict[str, dict[str, int]] = {}
    missed: list[str] = []
    for group, paths in groups.items():
        counts = {"flagged": 0, "clean": 0, "error": 0}
        for path in paths:
            seconds, verdict = _median_time(fn, path)
            per_file[f"{group}/{path.name}"] = round(seconds * 1000, 3)
            counts[str(verdict)] += 1
            if group == "malicious" and verdict != "flagged":
                missed.append(path.name)
            if group == "malformed" and verdict == "clean":
                missed.append(f"{path.name} (malformed, passed as clean)")
        verdicts[group] = counts
    times = list(per_file.values())
    return {
        "verdicts": verdicts,
        "malicious_flagged": f"{verdicts['malicious']['flagged']}/{len(groups['malicious'])}",
        "benign_false_positives": verdicts["benign"]["flagged"],
        "malformed_passed_as_clean": verdicts["malformed"]["clean"],
        "missed": missed,
        "ms_per_file": {
            "mean": round(statistics.mean(times), 3),
            "median": round(statistics.median(times), 3),
            "max": round(max(times), 3),
        },
        "ms_by_file": per_file,
    }


def run() -> dict:
    from fixtures.gen.attacks import build_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        canary = root / "CANARY"
        groups = build_corpus(root / "corpus", canary)
        results: dict = {"files": {g: len(p) for g, p in groups.items()}, "repeats": REPEATS}
        results["mlaudit"] = _tool_stats(_mlaudit, groups)
        try:
            import importlib.metadata

            import picklescan  # noqa: F401

            results["picklescan"] = _tool_stats(_picklescan, groups)
            results["picklescan"]["version"] = importlib.metadata.version("picklescan")
        except ImportError:
            results["picklescan"] = "not installed (make bench installs it into .venv)"
        results["canary_created"] = canary.exists()
    return results
