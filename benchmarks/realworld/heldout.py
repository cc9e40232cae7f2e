"""Part `heldout`: real configs from projects that are not in the development corpus, labelled
in heldout.yaml before mlaudit was run on them, scored exactly as part `configs` is.

The snapshots are not in ../shared/realworld/configs; they are looked for in
$MLAUDIT_HELDOUT, ../shared/realworld/heldout, then ../heldout beside the checkout (recreate with
`python -m benchmarks.realworld.heldout_fetch`). When absent the part says so and scores nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from benchmarks.realworld._common import REPO
from benchmarks.realworld.configs import evaluate

PART = "heldout"
LABELS = Path(__file__).with_name("heldout.yaml")


def snapshot_root(shared: Path) -> Path | None:
    """The first of $MLAUDIT_HELDOUT, <shared>/heldout, ../heldout that is a folder."""
    env = os.environ.get("MLAUDIT_HELDOUT")
    for cand in (Path(env) if env else None, shared / "heldout", REPO.parent / "heldout"):
        if cand is not None and cand.is_dir():
            return cand
    return None


def run(shared: Path) -> dict[str, Any]:
    return run_labels(shared, LABELS, PART)


def run_labels(shared: Path, labels_path: Path, part: str) -> dict[str, Any]:
    """Score the held-out files labelled in `labels_path`, or skip with one line when any
    snapshot is absent (a partial set would give numbers that compare with nothing)."""
    spec = yaml.safe_load(labels_path.read_text())
    entries = [{**e, "file": f"{e['repo'].replace('/', '__')}/{e['path']}"} for e in spec["files"]]
    root = snapshot_root(shared)
    missing = [e["file"] for e in entries if root is None or not (root / e["file"]).is_file()]
    if missing:
        print(f"{part}: skipped - {len(missing)} of {len(entries)} snapshot files absent "
              f"(looked in $MLAUDIT_HELDOUT, {shared / 'heldout'}, {REPO.parent / 'heldout'}); "
              "recreate with: python -m benchmarks.realworld.heldout_fetch REPOS_DIR [ROOT]")
        return {"skipped": f"{len(missing)} snapshot files absent"}
    return evaluate(root, entries, part)
