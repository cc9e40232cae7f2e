"""Shared helpers for the `mlaudit fix` tests: paths of the trained fixtures, hashing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

TRAINED = Path(__file__).resolve().parent.parent / "fixtures" / "build" / "trained"
FAST = ("--measure-seconds", "0.05", "--threads", "1")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_args(name: str) -> list[str]:
    """--config/--run-model/--eval-data for fixture model `name` (mlp, cnn, transformer)."""
    return [
        "--config",
        str(TRAINED / f"{name}.yaml"),
        "--run-model",
        "--eval-data",
        str(TRAINED / f"{name}_eval.npz"),
        *FAST,
    ]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def read_report(out_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The fix report written into `out_dir`, and its variants keyed by name."""
    report = json.loads((Path(out_dir) / "fix-report.json").read_text())
    return report, {v["name"]: v for v in report["variants"]}
