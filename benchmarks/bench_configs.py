"""Training-config reader: parse speed on the committed fixture configs, and the time and
peak Python memory to reject hostile input (alias bomb, oversized file, node flood)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from mlaudit.inputs import InputError
from mlaudit.inputs.training_config import read_training_config
from mlaudit.inputs.yaml_lines import MAX_BYTES, MAX_NODES, parse_config_text

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "cases"


def _measure(fn) -> dict:
    tracemalloc.start()
    started = time.perf_counter()
    outcome = "ok"
    try:
        fn()
    except InputError as err:
        outcome = err.reason
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": round(seconds, 4), "peak_mb": round(peak / 1e6, 2), "outcome": outcome}


def run() -> dict:
    files = sorted(p for p in ROOT.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
    started = time.perf_counter()
    recognized = 0
    for path in files:
        try:
            recognized += read_training_config(path, path.name) is not None
        except InputError:
            pass
    fixture_seconds = time.perf_counter() - started
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    # Just under the up-front line/comma/colon count, so the bounded walk is what stops it.
    flood = "items:\n" + "".join(f"  - [{i}, {i}, {i}, {i}]\n" for i in range(MAX_NODES // 4))
    flat = "items: [" + ",".join("1" for _ in range(3 * MAX_NODES)) + "]\n"
    near_limit = "lr: 0.1\nnotes: |\n" + "".join("  " + "x" * 98 + "\n" for _ in range(MAX_BYTES // 101))
    return {
        "fixture_configs": len(files),
        "recognized_as_training_configs": recognized,
        "fixture_parse_ms_per_file": round(1000 * fixture_seconds / max(len(files), 1), 3),
        "alias_bomb_1e9_values": _measure(lambda: parse_config_text(bomb, "bomb.yaml")),
        "node_flood": {"bytes": len(flood), **_measure(lambda: parse_config_text(flood, "flood.yaml"))},
        "flat_list_flood": {"bytes": len(flat), **_measure(lambda: parse_config_text(flat, "flat.yaml"))},
        "near_size_limit_text": {"bytes": len(near_limit),
                                 **_measure(lambda: parse_config_text(near_limit, "big.yaml"))},
    }
