"""Part `repos-heldout`: the held-out repository snapshots (repos_heldout.yaml, labelled before
mlaudit was run on them), scored exactly as part `repos` scores the development set.
Run alone: `python -m benchmarks.realworld.repos --labels heldout [REPO ...]`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.realworld.repos import HELDOUT_LABELS, HELDOUT_RESULTS, measure

PART = "repos-heldout"


def run(_shared: Path | None = None, wanted: Iterable[str] = ()) -> dict[str, Any]:
    """Scan the held-out snapshots present; one skip line when the label file is absent."""
    return measure(list(wanted), HELDOUT_LABELS, HELDOUT_RESULTS)
