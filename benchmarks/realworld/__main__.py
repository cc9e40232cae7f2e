"""Run every real-world part (or the named ones) and merge the numbers into
benchmarks/results/realworld.json. Skips with a clear message when ../shared/realworld is absent."""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
from types import ModuleType

from benchmarks import realworld
from benchmarks.realworld._common import RESULTS, shared_root


def parts() -> dict[str, ModuleType]:
    """Part modules of this package (any public module with PART and run), by name."""
    found = {}
    for info in pkgutil.iter_modules(realworld.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.realworld.{info.name}")
        if hasattr(module, "PART") and hasattr(module, "run"):
            found[module.PART] = module
    return found


def main(argv: list[str]) -> int:
    shared = shared_root()
    if shared is None:
        print("realworld: skipped - ../shared/realworld is not beside this checkout "
              "(the corpus is never copied into the repository)")
        return 0
    available = parts()
    unknown = [a for a in argv if a not in available]
    if unknown:
        print(f"realworld: unknown part(s) {', '.join(unknown)}; known: {', '.join(sorted(available))}")
        return 2
    results_path = RESULTS / "realworld.json"
    try:
        doc = json.loads(results_path.read_text())
    except (OSError, ValueError):
        doc = {}
    doc.setdefault("parts", {})
    for name in sorted(argv or available):
        started = time.perf_counter()
        numbers = available[name].run(shared)
        doc["parts"][name] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "wall_s": round(time.perf_counter() - started, 2),
            "python": platform.python_version(),
            "results": numbers,
        }
    RESULTS.mkdir(exist_ok=True)
    tmp = results_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(results_path)
    print(f"-> {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
