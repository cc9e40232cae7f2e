"""Shared helpers for the `mlaudit fix` tests: paths of the trained fixtures, hashing."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
