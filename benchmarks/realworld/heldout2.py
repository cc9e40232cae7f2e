"""Part `heldout2`: a second held-out set (lightning-hydra-template, open-r1, YOLOv5, nanoGPT),
labelled in heldout2.yaml and committed before mlaudit was first run on those files. Snapshots
are looked for where part `heldout` looks; recreate them with
`python -m benchmarks.realworld.heldout_fetch REPOS_DIR [ROOT]`. Skipped with one line when absent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.realworld.heldout import run_labels

PART = "heldout2"
LABELS = Path(__file__).with_name("heldout2.yaml")


def run(shared: Path) -> dict[str, Any]:
    return run_labels(shared, LABELS, PART)
