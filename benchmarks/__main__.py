"""Run every benchmark module and write its numbers to benchmarks/results/<name>.json.

`python -m benchmarks [NAME ...]` runs only the named ones (e.g. `startup`).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

import benchmarks

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    names = [i.name for i in pkgutil.iter_modules(benchmarks.__path__) if i.name.startswith("bench_")]
    wanted = [n for n in names if not argv or n.removeprefix("bench_") in argv]
    RESULTS.mkdir(exist_ok=True)
    for name in sorted(wanted):
        started = time.perf_counter()
        numbers = importlib.import_module(f"benchmarks.{name}").run()
        doc = {
            "benchmark": name.removeprefix("bench_"),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": {
                "python": platform.python_version(),
                "cpu": platform.processor() or platform.machine(),
            },
            "wall_s": round(time.perf_counter() - started, 3),
            "results": numbers,
        }
        path = RESULTS / f"{doc['benchmark']}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{doc['benchmark']}: {json.dumps(numbers)}\n  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
