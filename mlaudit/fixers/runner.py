"""Run a fix plan: work in a temp dir beside the output, verify, then move it into place.

The input is hashed before and after and never written. An interrupted or failed run removes
its temp dir, so the output directory either holds a complete, verified result or nothing
(a failed budget keeps its artifact only with --keep-failed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError, all_fixers, outdir, stages
from mlaudit.fixers.base import (
    Baseline,
    Budget,
    FixState,
    RunSettings,
    StepResult,
    state_dict_of,
)
from mlaudit.fixers.plan import Plan, make_plan, unsafe_steps_allowed
from mlaudit.fixers.stages import Scanner


@dataclass(frozen=True)
class FixOptions:
    """Everything `mlaudit fix` was asked to do."""

    checkpoint: Path
    config: Path | None = None
    apply: tuple[str, ...] = ()
    out: Path | None = None
    dry_run: bool = False
    unsafe_fixes: bool = False
    budget: Budget = field(default_factory=Budget)
    eval_data: Path | None = None
    force: bool = False
    keep_failed: bool = False
    run_model: bool = False
    large_batch: int = 32
    measure_seconds: float = 1.0
    threads: int | None = None
    scanner: Scanner | None = None  # None: no findings, so only --apply and --unsafe-fixes plan


@dataclass
class FixOutcome:
    """What happened: the plan, the steps, the report, where it went."""

    plan: Plan
    steps: list[StepResult] = field(default_factory=list)
    report: dict[str, Any] | None = None
    out_dir: Path | None = None
    budget_failure: str | None = None
    kept: bool = False


def sha256(path: Path) -> str:
    """Hex digest of a file (or of every file in a model directory, with their names), streamed."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(f.relative_to(path).as_posix().encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def default_out(path: Path) -> Path:
    """A new directory beside the input: `<stem>-fixed/`."""
    return path.parent / f"{path.stem}-fixed"


def _prepare(opts: FixOptions) -> tuple[Plan, dict[str, Any]]:
    """Read the input and config, and plan (no output written)."""
    from mlaudit.fixers.source import artifact_kind
    from mlaudit.inputs import InputError

    path = opts.checkpoint
    if not path.exists():
        raise FixError(f"{path}: no such file")
    kind = artifact_kind(path)  # a directory is accepted only as a Hugging Face model directory
    ctx: dict[str, Any] = {"kind": kind, "info": None, "cfg": None}
    try:
        if kind == "checkpoint":
            from mlaudit.inputs.checkpoint import read_checkpoint

            ctx["info"] = read_checkpoint(path, path.name)
        if opts.config is not None:
            from mlaudit.inputs.training_config import read_training_config

            if not opts.config.is_file():
                raise FixError(f"--config {opts.config}: no such file")
            cfg = read_training_config(opts.config, opts.config.name)
            if cfg is None:
                raise FixError(f"--config {opts.config}: not a training config (no model/optimizer/lr keys)")
            ctx["cfg"] = cfg
    except InputError as err:
        raise FixError(str(err)) from None
    has_arch = kind in ("torchscript", "torch-export", "hf-dir") or (
        ctx["cfg"] is not None and ctx["cfg"].model_target is not None and opts.run_model
    )
    if kind == "checkpoint" and ctx["cfg"] is not None and ctx["cfg"].model_target and not opts.run_model:
        ctx["arch_hint"] = "the config names a model class; pass --run-model to allow building it"
    scanned = opts.scanner is not None and kind == "checkpoint"
    findings = list(opts.scanner(path)) if opts.scanner is not None and scanned else []
    plan = make_plan(path, kind, findings, list(opts.apply) or None, opts.unsafe_fixes, has_arch)
    if ctx.get("arch_hint") and opts.unsafe_fixes:
        plan = Plan(plan.input_path, plan.artifact_kind, plan.steps, (*plan.notes, ctx["arch_hint"]),
                    plan.findings)
    unsafe_steps_allowed(plan, bool(opts.apply), opts.unsafe_fixes)
    return plan, ctx


def plan_only(opts: FixOptions) -> Plan:
    """The plan `--dry-run` prints."""
    return _prepare(opts)[0]


def _resolve_out(opts: FixOptions) -> Path:
    out = (opts.out or default_out(opts.checkpoint)).resolve()
    src = opts.checkpoint.resolve()
    if out == src or out == src.parent or out in src.parents:
        raise FixError(f"--out {out} would contain or replace the input; choose a new directory")
    if src.is_dir() and src in out.parents:
        raise FixError(f"--out {out} is inside the input model directory; choose a new directory")
    if out.exists() and not opts.force:
        raise FixError(f"{out} already exists (use --force to replace it)")
    if out.exists() and not out.is_dir():
        raise FixError(f"{out} exists and is not a directory")
    outdir.check_out(out, src, opts.force)  # --force replaces only what an mlaudit fix wrote
    return out


def _setup_model(state: FixState, opts: FixOptions, ctx: dict[str, Any], needs_model: bool) -> None:
    """Architecture, inputs, reference outputs (for model-level fixes and fidelity)."""
    import numpy as np

    from mlaudit.fixers import metrics, source

    kind, cfg = ctx["kind"], ctx["cfg"]
    threads = opts.threads or metrics.default_threads()
    if kind != "onnx":
        import torch

        # PyTorch and ONNX Runtime timed with the same thread count; run_fix restores it
        ctx.setdefault("torch_threads_before", torch.get_num_threads())
        torch.set_num_threads(threads)
    state.settings = RunSettings(threads, opts.large_batch, opts.measure_seconds)
    if kind == "onnx":
        state.onnx_input = state.onnx_path = state.input_path
        state.inputs = source.from_onnx(state.input_path)
    elif kind == "hf-dir":
        state.reference, state.inputs = source.load_hf(state.input_path)
        state.model = state.reference
    elif kind in ("torchscript", "torch-export"):
        state.reference = state.model = source.load_scripted(state.input_path, kind)
        if cfg is not None:
            state.inputs = source.from_config(cfg)
        elif opts.eval_data is not None:
            try:
                with np.load(opts.eval_data) as d:
                    shape = list(d["x"].shape[1:]) if "x" in d else []
                    dtype = d["x"].dtype.name if "x" in d else "float32"
            except (OSError, ValueError) as err:
                raise FixError(f"--eval-data {opts.eval_data}: cannot be read as .npz ({err})") from None
            state.inputs = source.InputSource(["input_0"], [shape], [dtype])
        else:
            raise FixError(f"{kind} input needs --config (input_spec) or --eval-data to know its inputs")
    elif cfg is not None and cfg.model_target and opts.run_model:
        from mlaudit.fixers.model_load import load_config_model

        model, loaded = load_config_model(cfg, state.checkpoint)
        ctx["model_load"] = {"state_key": loaded.where, "tensors_loaded": loaded.loaded,
                             "dropped_keys": list(loaded.dropped)}  # fmt: skip
        if loaded.line():
            state.warnings.append(loaded.line())
        state.reference = state.model = model
        state.inputs = source.from_config(cfg)
    elif needs_model:
        raise FixError("model-level fixes need an architecture (--config with --run-model)")
    else:
        return
    if opts.eval_data is not None:
        state.eval_labels = source.attach_eval_data(state.inputs, opts.eval_data)
    elif state.inputs.synthetic:
        state.warnings.append("fidelity measured on synthetic random inputs (pass --eval-data for real ones)")
    n = metrics.fidelity_samples(state.inputs)
    x = state.inputs.batch(n)
    if state.eval_labels is not None:  # labels of the samples fidelity is measured on (any count)
        state.eval_labels = state.eval_labels[:n]
    ref_run = (
        metrics.torch_runner(state.reference)
        if state.reference is not None
        else metrics.ort_runner(state.onnx_input, threads)
    )
    state.runners["input"] = ref_run
    try:
        ref = ref_run(x)
    except Exception as err:  # project code / a static-shape export: one line, not a traceback
        shape = "x".join(str(s) for s in x[0].shape)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FixError(f"the model fails on inputs of shape {shape} (static shapes?): {first}") from None
    # every output is judged; top-1 agreement only where an output is class scores (declared by
    # its name or a [batch, classes] matrix), never over hidden states, embeddings or heatmaps
    names = list(getattr(state.reference, "output_names", None) or [])
    if state.reference is None and state.onnx_input is not None:
        names = metrics.onnx_output_names(state.onnx_input)
    names = (names + [f"output_{i}" for i in range(len(names), len(ref))])[: len(ref)]
    accuracy = (
        metrics.classification(ref, state.eval_labels)["accuracy"] if state.eval_labels is not None else None
    )
    scores = [metrics.is_class_scores(r, m) for r, m in zip(ref, names, strict=True)]
    state.baseline = Baseline(x, ref, scores, accuracy, names)


def _measure(state: FixState, ctx: dict[str, Any], opts: FixOptions) -> list[dict[str, Any]]:
    """Before/after rows for the report."""
    from mlaudit.fixers import metrics

    rows: list[dict[str, Any]] = []
    info = ctx["info"]
    inputs = (
        sorted(p for p in state.input_path.rglob("*") if p.is_file())
        if state.input_path.is_dir()
        else [state.input_path]
    )
    input_row: dict[str, Any] = {
        "name": "input",
        "files": [p.name for p in inputs],
        "size_bytes": metrics.files_size(inputs),
    }
    if info is not None:
        weights, _ = state_dict_of(state.checkpoint)
        input_row["params"], input_row["nonzero_params"] = metrics.count_params(list(weights.values()))
    elif state.reference is not None and ctx["kind"] == "hf-dir":
        input_row["params"], input_row["nonzero_params"] = metrics.module_params(state.reference)
    elif state.onnx_input is not None:
        input_row["params"], input_row["nonzero_params"] = metrics.onnx_params(state.onnx_input)
        files = metrics.onnx_files(state.onnx_input)  # external data counts too
        input_row["files"], input_row["size_bytes"] = [f.name for f in files], metrics.files_size(files)
    rows.append(input_row)
    if state.state_file is not None:
        p, nz = metrics.count_params(list(state.tensors.values()))
        rows.append(
            {
                "name": "fixed weights",
                "files": [state.state_file.name],
                "size_bytes": state.state_file.stat().st_size,
                "params": p,
                "nonzero_params": nz,
            }
        )
    if state.reference is not None and state.model_changed:
        state.runners["pytorch (pruned)"] = metrics.torch_runner(state.model)
        rows.append(
            {
                "name": "pytorch (pruned)",
                "files": [state.state_file.name] if state.state_file else [],
                "size_bytes": state.state_file.stat().st_size if state.state_file else None,
                **dict(zip(("params", "nonzero_params"), metrics.module_params(state.model), strict=True)),
            }
        )
    fp32_onnx = state.exported_onnx
    threads = state.settings.threads
    int8_path = state.int8_path
    onnx_variants = (
        ("onnx fp32", fp32_onnx),
        ("onnx int8", int8_path if int8_path is not None and int8_path.exists() else None),
    )
    for variant, path in onnx_variants:
        if path is None:
            continue
        outdir.raise_if_terminated()
        files = metrics.onnx_files(path)
        state.runners[variant] = metrics.ort_runner(path, threads)
        rows.append(
            {
                "name": variant,
                "files": [f.name for f in files],
                "size_bytes": metrics.files_size(files),
                **dict(zip(("params", "nonzero_params"), metrics.onnx_params(path), strict=True)),
            }
        )
    by_name = {r["name"]: r for r in rows}
    for name in state.runners:
        by_name.setdefault(name, {"name": name, "files": [], "size_bytes": None})
        if by_name[name] not in rows:
            rows.append(by_name[name])
    if state.runners and state.inputs is not None:
        baseline = state.require_baseline()
        x, ref = baseline.inputs, baseline.outputs
        batches = {1: state.inputs.batch(1), opts.large_batch: state.inputs.batch(opts.large_batch)}
        lat = metrics.latency(state.runners, batches, seconds=opts.measure_seconds)
        for name, run in state.runners.items():
            row = by_name[name]
            # the reference was computed at setup, the kept int8 model's outputs by its search
            reused = state.int8_outputs if name == "onnx int8" else None
            got = ref if name == "input" else reused if reused is not None else run(x)
            row["fidelity"] = metrics.fidelity(ref, got, baseline.class_scores, baseline.output_names)
            if state.eval_labels is not None:
                row.update(metrics.classification(got, state.eval_labels))
            row["latency"] = lat[name]
            big = lat[name][str(opts.large_batch)]
            row["energy_wh_per_million_estimate"] = metrics.energy_wh_per_million(
                big["p50_ms"], opts.large_batch, threads
            )
        if "input" in by_name and state.reference is not None:
            by_name["input"]["runtime"] = "pytorch fp32"
    return rows


NOISY_SPREAD_PCT = 25.0  # a variant whose rounds wander more than this is flagged as noisy


def latency_gate(rows: list[dict[str, Any]], budget: Budget, batch: int) -> tuple[str | None, list[str]]:
    """Judge int8 against fp32 ONNX on the numbers the report prints (the p50s of the same
    interleaved rounds at the larger batch). Returns (budget failure or None, warnings).

    A ratio over the limit by less than the timer noise (the larger interquartile spread of
    the two) cannot be told from the limit: the model is kept and a warning says so, so a
    load spike can never flip the decision either way."""
    by_name = {r["name"]: r for r in rows}
    noisy = [
        f"{r['name']} b{b} {lat['spread_pct']:.0f}%"
        for r in rows
        for b, lat in (r.get("latency") or {}).items()
        if lat.get("spread_pct", 0) > NOISY_SPREAD_PCT
    ]
    warnings = (
        [f"noisy timings (rounds spread around the median: {', '.join(noisy)}; the machine is busy): "
         "compare ratios within one run, re-run for stable numbers"]
        if noisy else []
    )  # fmt: skip
    fp32 = (by_name.get("onnx fp32") or by_name.get("input") or {}).get("latency", {}).get(str(batch))
    int8 = (by_name.get("onnx int8") or {}).get("latency", {}).get(str(batch))
    if not fp32 or not int8 or not fp32["p50_ms"]:
        return None, warnings
    ratio = int8["p50_ms"] / fp32["p50_ms"]
    noise = max(int8.get("spread_pct", 0.0), fp32.get("spread_pct", 0.0)) / 100
    if ratio <= budget.latency:
        return None, warnings
    line = (
        f"int8 latency budget failed: {ratio:.2f}x the fp32 ONNX model at batch {batch} "
        f"(limit {budget.latency:.2f}x, over by {ratio - budget.latency:.2f}x; p50 {int8['p50_ms']:.3g} vs "
        f"{fp32['p50_ms']:.3g} ms)"
    )
    if ratio <= budget.latency * (1 + noise):
        warnings.append(
            f"int8 is {ratio:.2f}x the fp32 ONNX latency at batch {batch}, within the timer noise "
            f"(±{noise:.0%}) of the {budget.latency:.2f}x limit: cannot tell, kept"
        )
        return None, warnings
    return line, warnings


def run_fix(opts: FixOptions, on_step: Any = None) -> FixOutcome:
    """Plan, apply into a temp dir, verify, measure, report, move into place."""
    plan, ctx = _prepare(opts)
    outcome = FixOutcome(plan)
    if opts.dry_run or not plan.steps:
        return outcome
    out = _resolve_out(opts)
    before_hash = sha256(opts.checkpoint)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    outdir.sweep_leftovers(out)  # work dirs of runs killed with SIGKILL
    tmp = outdir.make_workdir(out)
    moved = False
    try:
        outdir.raise_if_terminated()  # safe points: SIGTERM is acted on only here (outdir.py)
        state = FixState(input_path=opts.checkpoint, workdir=tmp, budget=opts.budget, config=ctx["cfg"])
        if ctx["info"] is not None:
            from mlaudit.inputs import InputError
            from mlaudit.inputs.checkpoint import iter_tensors, load_object

            try:
                state.source = ctx["info"]
                state.checkpoint = load_object(ctx["info"])
                state.tensors = dict(iter_tensors(ctx["info"]))
            except InputError as err:
                raise FixError(str(err)) from None
            state.origin = {k: k for k in state.tensors}
            state.metadata = {k: v for k, v in ctx["info"].metadata.items()}
        outdir.raise_if_terminated()
        needs_model = any(s.level == "model" for s in plan.steps)
        _setup_model(state, opts, ctx, needs_model)
        fixers = all_fixers()
        for step in plan.steps:
            outdir.raise_if_terminated()
            t0 = time.perf_counter()
            result = fixers[step.name].handler(state, step.config)
            result.evidence["wall_s"] = round(time.perf_counter() - t0, 3)
            outcome.steps.append(result)
            if on_step is not None:
                on_step(result)
            if result.budget_failure:
                outcome.budget_failure = result.budget_failure
                break
        outdir.raise_if_terminated()
        if outcome.budget_failure is None:
            verified = stages.verify_state(state, ctx["info"], outcome.steps)
            if verified is not None:
                outcome.steps.append(verified)
            cast = stages.cast_fidelity(state)
            if cast is not None:
                outcome.steps.append(cast)
                outcome.budget_failure = cast.budget_failure
        outdir.raise_if_terminated()
        diff = stages.rescan_output(state, plan, opts.scanner)
        if diff is not None and outcome.budget_failure is None:
            from mlaudit.fixers.findings_diff import introduced_errors

            errors = introduced_errors(diff)
            if errors:
                outcome.budget_failure = (
                    "findings gate failed: the output has error findings the input did not: "
                    + ", ".join(errors)
                )
        if outcome.budget_failure is not None and not opts.keep_failed:
            return outcome
        outdir.raise_if_terminated()
        rows = _measure(state, ctx, opts)
        outdir.raise_if_terminated()
        if outcome.budget_failure is None:
            failure, noise = latency_gate(rows, opts.budget, opts.large_batch)
            state.warnings.extend(noise)
            if failure is not None:
                outcome.budget_failure = failure
                int8_step = next((s for s in outcome.steps if s.name.startswith("int8")), None)
                if int8_step is not None:
                    int8_step.status, int8_step.budget_failure = "failed", failure
                if not opts.keep_failed:
                    return outcome
        after_hash = sha256(opts.checkpoint)
        if after_hash != before_hash:  # cannot happen by design; refuse to report success if it did
            raise FixError("the input file changed during the run (another process?); nothing written")
        from mlaudit import __version__
        from mlaudit.fixers.report import write_reports

        report = {
            "tool": "mlaudit", "version": __version__, "input": str(opts.checkpoint),
            "input_kind": plan.artifact_kind, "input_sha256": before_hash, "input_unchanged": True,
            "output_dir": str(out), "status": "budget-failed" if outcome.budget_failure else "ok",
            "budget_failure": outcome.budget_failure, "budget": asdict(opts.budget),
            "plan": [{"name": s.name, "applicability": s.applicability, "reason": s.reason,
                      "findings": [f"{f.code} {f.location.display()}" for f in s.findings]}
                     for s in plan.steps],
            "findings": diff,
            "model_load": ctx.get("model_load"),
            "steps": [asdict(s) for s in outcome.steps],
            "threads": state.settings.threads, "batches": [1, opts.large_batch],
            "inputs": state.inputs.origin if state.inputs is not None else None,
            "warnings": state.warnings + list(plan.notes),
            "variants": rows,
            "energy_note": "estimate, not a measurement: per-sample p50 time x threads x "
                           "15 W per busy core, per million inferences",
            "wall_s": round(time.perf_counter() - started, 2),
        }  # fmt: skip
        for f in tmp.glob(".int8-work"):
            shutil.rmtree(f, ignore_errors=True)
        write_reports(report, tmp)
        outdir.raise_if_terminated()  # the last one: after the move the output is complete
        _move_into_place(tmp, out)
        moved = True
        outdir.unmark(out)  # a finished output is recognised by its fix-report.json
        outcome.report, outcome.out_dir, outcome.kept = report, out, True
        return outcome
    finally:
        if "torch_threads_before" in ctx:
            import torch

            torch.set_num_threads(ctx["torch_threads_before"])
        if not moved:
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp dir onto `out` (same filesystem: atomic per rename)."""
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, trash)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(trash, out)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, out)
    with contextlib.suppress(OSError):  # mkdtemp / mkstemp create owner-only modes
        os.chmod(out, 0o755)
        for f in out.iterdir():
            os.chmod(f, 0o644)

