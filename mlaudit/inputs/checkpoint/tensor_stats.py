"""Input kind `checkpoint_stats`: every tensor's statistics, in one pass per tensor.

The numpy implementation (`array_stats`) reads every loadable format without torch. Files
whose tensors only torch can materialize (quantized, sparse; `arrays.needs_torch`) go through
`torch_stats` when torch is installed, and are reported inconclusive with the install line
when it is not. Memory stays near the largest tensor (see `arrays`).
"""

from __future__ import annotations

from typing import Any

from mlaudit.extras import need_line
from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.checkpoint.layout import CheckpointLayout
from mlaudit.inputs.checkpoint.stats import CheckpointStats, layer_rows
from mlaudit.model import ArtifactSummary


def _compute(layout: CheckpointLayout, **kwargs: Any) -> CheckpointStats:
    """numpy statistics; torch's for the files numpy cannot stand for (when it is installed)."""
    # Imported here, not at the top: registering the statistics rules must not cost a scan
    # without checkpoints the numpy import (~0.1-0.2 s).
    from mlaudit.inputs.checkpoint import array_stats, torch_stats
    from mlaudit.inputs.checkpoint.arrays import NeedsTorch

    try:
        return array_stats.compute_stats(layout, **kwargs)
    except NeedsTorch as err:
        line = need_line(f"tensor statistics ({err.reason})", ("torch",))
        if line:
            raise InputError(layout.info.rel, line) from None
    return torch_stats.compute_stats(layout, **kwargs)


@input_kind("checkpoint_stats", scope="file", file_kinds=("checkpoint",))
def load_checkpoint_stats(session, file) -> CheckpointStats | None:
    layout = session.get("checkpoint_layout", file)
    if layout is None:
        return None
    if not layout.info.safe_to_load:
        # Deliberately never loaded (flagged by MLS001/MLS002/MLS006/MLS007, or a format
        # mlaudit does not load: plain pickle, joblib, TorchScript, torch.export): the security
        # rules speak for the file; the statistics rules do not apply (an MLA002 here made
        # every clean .pkl, trusted TorchScript file and flagged file one more error).
        return None
    # The spectral caps are MLC016's params (defaults from its YAML, overridable in settings).
    params = session.rule_params("MLC016")
    from mlaudit.inputs.checkpoint.read import make_local

    make_local(layout.info)  # statistics read every tensor byte: a remote file comes down whole
    try:
        stats = _compute(
            layout,
            spectral=session.options.spectral,
            spectral_max_elements=params.max_elements,
            spectral_budget_s=params.time_budget_s,
        )
    except InputError:
        raise
    except (RuntimeError, ValueError, OSError, TypeError, AssertionError) as err:
        # (torch.load asserts on a legacy file whose storage keys do not match its pickle)
        # Not clean, not silent: the file is reported inconclusive for the stats rules.
        # one line (torch's dispatcher errors list every backend on further lines)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(file.rel, f"tensor statistics failed: {type(err).__name__}: {first}") from None
    model = {m.info.name for m in layout.model}
    session.add_artifact(ArtifactSummary(file.rel, "checkpoint-stats", {
        "layers": layer_rows(stats),
        "seconds": round(stats.seconds, 4),
        "nonfinite_tensors": sum(1 for s in stats.tensors.values() if s.nan or s.inf),
        "zero_fraction_by_layer": {n: round(s.zero_fraction, 4) for n, s in stats.tensors.items()
                                   if n in model and s.zeros and s.alias_of is None},
        "duplicate_groups": [list(g) for g in stats.duplicates],
        "spectral_alpha": {n: round(s.alpha, 3) for n, s in stats.tensors.items() if s.alpha is not None},
        "spectral_skipped": list(stats.spectral.get("skipped", [])),
    }))
    return stats
