"""Stages of a fix run after the fixers: verification of what they wrote and the re-scan.

Verification is a stage of its own, not part of a fixer: the state file is read back and
compared bit for bit with the input re-read from disk (lossless runs) or with the fixed tensors
(after an unsafe step); a cast is judged by the model's outputs with the cast weights. The
output is then scanned again with the fixable rules. (Measurement, the timing and before/after
table, is the runner's `_measure` stage.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError
from mlaudit.fixers.base import FixState, StepResult
from mlaudit.fixers.plan import Plan
from mlaudit.model import Finding

# file -> the fixable rules' findings on it: the engine's scan, handed in by the CLI (the
# fixers layer does not import the engine; see mlaudit.fix_scan)
Scanner = Callable[[Path], Sequence[Finding]]


def verify_state(state: FixState, info: Any, steps: list[StepResult]) -> StepResult | None:
    """Write the state file when tensors changed and no step wrote one; verify it."""
    import torch

    from mlaudit.fixers.verify import bit_equal, read_state_file, verify_bit_exact
    from mlaudit.inputs.checkpoint import iter_tensors

    if state.state_file is None and state.state_dirty:
        state.state_file = state.workdir / f"{state.input_path.stem}.pt"
        torch.save(state.tensors, state.state_file)
    if state.state_file is None:
        return None
    lossless = all(s.applicability == "safe" for s in steps if s.status == "applied")
    if lossless and not state.model_changed:
        # re-read the input from disk: the comparison does not trust the pipeline's memory
        source = dict(iter_tensors(info))
        line = verify_bit_exact(state.state_file, state.tensors, state.origin, source)
    else:
        got = read_state_file(state.state_file)
        if set(got) != set(state.tensors) or not all(bit_equal(got[k], state.tensors[k]) for k in got):
            raise FixError(f"verification failed: {state.state_file.name} does not read back as written")
        line = (
            f"{len(got)} tensors read back bit-identical to the fixed tensors (unsafe steps changed values)"
        )
    return StepResult("verify", "safe", "applied", f"verified {state.state_file.name}", verified=line)


def cast_fidelity(state: FixState) -> StepResult | None:
    """With an architecture: outputs of the model with the cast weights (upcast) vs fp32."""
    import copy

    from mlaudit.fixers import metrics
    from mlaudit.fixers.int8 import budget_miss

    dtype = state.cast_dtype
    if dtype is None or state.reference is None:
        return None
    baseline = state.require_baseline()
    # a config's keyword interface wraps the model class as `inner`: cast the class's weights
    model = copy.deepcopy(state.model)
    target = getattr(model, "inner", model)
    own = target.state_dict()
    # the cast tensors may still carry wrapper keys and prefixes (`model.module.fc.weight`)
    mapped = {}
    for key in own:
        hits = [n for n in state.tensors if n == key or n.endswith("." + key)]
        if hits:
            mapped[key] = state.tensors[min(hits, key=len)].to(own[key].dtype)
    if set(mapped) != set(own):
        missing = sorted(set(own) - set(mapped))[:3]
        raise FixError(f"cannot match the cast tensors to the model's parameters (e.g. {missing})")
    target.load_state_dict(mapped, strict=True)
    run = state.runners[f"pytorch ({dtype} weights)"] = metrics.torch_runner(model)
    got = run(baseline.inputs)
    fid = metrics.fidelity(baseline.outputs, got, baseline.class_scores, baseline.output_names)
    acc = (
        metrics.classification(got, state.eval_labels)["accuracy"] if state.eval_labels is not None else None
    )
    miss = budget_miss(fid, acc, baseline.accuracy, state.budget)
    name = f"cast-{'bf16' if dtype == 'bfloat16' else 'fp16'}"
    return StepResult(
        name,
        "unsafe",
        "failed" if miss else "applied",
        f"model outputs with {dtype} weights",
        verified=f"mean cosine {fid['mean_cosine']:.5f} vs fp32",
        evidence={"fidelity": fid},
        budget_failure=f"{name} fidelity budget failed: {miss}" if miss else None,
    )


def rescan_output(state: FixState, plan: Plan, scanner: Scanner | None) -> dict[str, Any] | None:
    """The fixable rules again, on the state file the fix wrote (still in the work dir):
    `{removed, introduced, remaining}` against the input's findings. None when nothing was
    scanned (no scanner, not a checkpoint, or no state file written)."""
    from mlaudit.fixers.findings_diff import findings_diff

    if scanner is None or plan.artifact_kind != "checkpoint" or state.state_file is None:
        return None
    after = scanner(state.state_file)
    return findings_diff(plan.findings, after)
