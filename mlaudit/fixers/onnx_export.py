"""onnx (unsafe): export the model to ONNX, check it, and prove parity at two input shapes.

Exporters, in order (`exporter=auto`): the TorchScript-based exporter (`dynamo=False`, opset
17 at most) first, then the current one (torch.export + onnxscript, `dynamo=True`) at the
newest opset the runtime runs, then at opset 18. Measured on a MiniLM-L6 encoder (1 thread,
loaded 2-core box, docs/fix.md): the TorchScript exporter took 2-4 s where torch.export took
18-25 s, and ONNX Runtime ran its opset-17 graph as fast or faster (fp32 345 vs 466 ms, int8
147 vs 208 ms at batch 32), because the runtime's own fusions (Attention, Gelu, LayerNorm)
match what it writes. Models it exports with a baked-in shape (`nn.MultiheadAttention`
reshapes) fail the parity check at the second shape and fall through to torch.export: every
fallback is decided by verification, never by time. Both exporters keep the same interface:
input and output names, dynamic axes named `batch`/`sequence`/...

Parity against PyTorch is checked at two shapes: another batch size and, where the input spec
names a dynamic dim (e.g. `seq`), another length of it.

Opset for torch.export: by default the newest of 23 / 20 / 18 that the installed ONNX Runtime
runs (`Gelu`-20 and `Attention`-23 as single ops), opset 18 as its fallback; `opset=18` pins it
for older runtimes.

The first torch.export attempt exports plain batch-first self-attention without the
sequence-first transposes `nn.MultiheadAttention` otherwise brings (export_attention.py);
parity is always checked against the unmodified model, and the other attempts export the model
exactly as written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlaudit.fixers import FixError, fixer
from mlaudit.fixers.base import FixState, StepResult, logger_level
from mlaudit.fixers.metrics import onnx_files, ort_runner, torch_runner
from mlaudit.fixers.verify import check_onnx, parity


@dataclass(frozen=True)
class OnnxConfig:
    """`opset`: ONNX opset (0: the newest of 23/20/18 the installed runtime runs);
    `exporter`: auto | dynamo | legacy; `batch_first_attention`: export plain batch-first
    nn.MultiheadAttention self-attention without the sequence-first transposes (dynamo)."""

    opset: int = 0
    exporter: str = "auto"
    batch_first_attention: bool = True


# (opset, first onnxruntime release with CPU kernels for the ops that opset adds and the
# exporter uses): Gelu-20 came with 1.17, the standard Attention-23 CPU kernel with 1.23
OPSET_RUNTIME = ((23, (1, 23)), (20, (1, 17)), (18, (1, 14)))


def default_opset() -> int:
    """The newest opset in OPSET_RUNTIME that both onnx and onnxruntime here support."""
    import onnx
    import onnxruntime

    have = tuple(int(p) for p in re.findall(r"\d+", onnxruntime.__version__)[:2])
    top = onnx.defs.onnx_opset_version()
    for opset, runtime in OPSET_RUNTIME:
        if opset <= top and have >= runtime:
            return opset
    return 18


def attempts(config: OnnxConfig) -> list[tuple[str, int]]:
    """(exporter, opset) pairs to try in order. `auto`: the TorchScript-based exporter, then
    torch.export at the chosen opset, then at opset 18; with an explicit opset above 17,
    torch.export at it first and the TorchScript-based exporter as the fallback. An explicit
    exporter is tried alone (torch.export also at opset 18 when no opset was given)."""
    opset = config.opset or default_opset()
    if config.exporter == "legacy":
        return [("legacy", opset)]
    dynamo = [("dynamo", opset)] + ([("dynamo", 18)] if config.opset == 0 and opset != 18 else [])
    if config.exporter == "dynamo":
        return dynamo
    # auto: the TorchScript-based exporter first (fast; see the module doc) unless an opset above
    # its cap of 17 was asked for, in which case it is the fallback
    if config.opset > 17:
        return [*dynamo, ("legacy", opset)]
    return [("legacy", opset), *dynamo]


def _export(
    model: Any,
    example: tuple,
    path: Path,
    names: list[str],
    dyn: list[dict[int, str]],
    outputs: list[str],
    exporter: str,
    opset: int,
    rewrite_attention: bool = False,
    out_dyn: list[dict[int, str]] | None = None,
) -> int:
    """Export; returns how many attention modules were exported batch-first (see
    export_attention.py; only when `rewrite_attention`). `out_dyn`: the dynamic axes of each
    output (`output_axes`), which the TorchScript-based exporter needs to be told (torch.export
    derives them and `name_dynamic_dims` names them)."""
    import torch

    args = tuple(torch.from_numpy(a) for a in example)
    from mlaudit.fixers.export_attention import batch_first_attention

    sink = io.StringIO()
    rewrite = batch_first_attention(model) if rewrite_attention else contextlib.nullcontext(0)
    with (
        logger_level("torch.onnx", logging.ERROR),  # registration chatter on stderr
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        rewrite as rewritten,
    ):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            from torch.export import Dim

            shapes = tuple({axis: Dim.DYNAMIC for axis in d} for d in dyn)
            program = torch.onnx.export(
                model,
                args,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=names,
                output_names=outputs,
                opset_version=opset,
                verbose=False,
            )
            # protobuf caps a file at 2 GB: large weights go to external data beside the model
            big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_000_000_000
            assert program is not None, "torch.onnx.export(dynamo=True) returns the program"
            program.save(str(path), external_data=big)
        else:
            torch.onnx.export(
                model,
                args,
                str(path),
                dynamo=False,
                input_names=names,
                output_names=outputs,
                dynamic_axes={
                    **{n: d for n, d in zip(names, dyn, strict=True)},
                    **{n: d for n, d in zip(outputs, out_dyn or [], strict=False) if d},
                },
                opset_version=min(opset, 17),
            )
    return rewritten


def name_dynamic_dims(model: Any, names: list[str], dyn: list[dict[int, str]]) -> None:
    """Give the graph's dynamic dims the names we asked for (`batch`, `sequence`, ...): the
    dynamo exporter writes its own symbols (`s18`, `s43`), and may use two symbols for what is
    one axis (the batch of input_ids and of attention_mask). Every occurrence of a symbol in
    inputs, outputs and value_info is renamed, so related dims stay related."""
    rename: dict[str, str] = {}
    by_name = {i.name: i for i in model.graph.input}
    for name, axes in zip(names, dyn, strict=True):
        if name not in by_name:
            continue
        dims = by_name[name].type.tensor_type.shape.dim
        for axis, wanted in axes.items():
            if axis < len(dims) and dims[axis].dim_param:
                rename.setdefault(dims[axis].dim_param, wanted)
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in rename:
                d.dim_param = rename[d.dim_param]


def strip_debug_info(
    path: Path, names: list[str] | None = None, dyn: list[dict[int, str]] | None = None
) -> int:
    """Drop per-node stack traces / doc strings the exporter embeds (not needed to run the
    model; ~10% of a small model's file), and name the dynamic dims (`name_dynamic_dims`).
    Returns the bytes saved."""
    import onnx

    before = path.stat().st_size
    model = onnx.load(str(path), load_external_data=False)  # external tensors stay where they are
    if names and dyn:
        name_dynamic_dims(model, names, dyn)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    model.graph.doc_string = ""
    onnx.save(model, str(path))
    return before - path.stat().st_size


def output_axes(refs: list[list[Any]], sizes: list[dict[str, int]]) -> list[dict[int, str]]:
    """Per output, its dynamic axes and their names, from the model's outputs at the two parity
    shapes (`sizes`: the batch and each dynamic input dim at each shape). An axis whose size
    changed is dynamic: named `batch` or the input dim's name (`sequence`) when it followed it
    at both shapes, else `output_<i>_dim<axis>`."""
    out: list[dict[int, str]] = []
    for i, (o1, o2) in enumerate(zip(refs[0], refs[1], strict=False)):
        axes: dict[int, str] = {}
        for axis, (n1, n2) in enumerate(zip(o1.shape, o2.shape, strict=False)):
            if n1 != n2:
                same = [k for k in sizes[0] if (sizes[0][k], sizes[1].get(k)) == (n1, n2)]
                axes[axis] = same[0] if same else f"output_{i}_dim{axis}"
        out.append(axes)
    return out


def shapes_to_check(state: FixState) -> list[tuple[int, dict[str, int]]]:
    """Two (batch, dims) shapes: the default and a different batch + shorter dynamic dims."""
    second = {d: max(1, size // 2) for d, size in state.inputs.dynamic_dims.items()}
    return [(2, {}), (5, second)]


@fixer(
    "onnx",
    "unsafe",
    "model",
    "export to ONNX (dynamo exporter, legacy fallback), ONNX checker, parity "
    "with PyTorch at two input shapes",
    OnnxConfig,
    after=("prune",),
)
def export_onnx(state: FixState, config: OnnxConfig) -> StepResult:
    """Export state.model to <workdir>/<stem>.onnx and verify it."""
    if state.onnx_input is not None:
        state.onnx_path = state.onnx_input
        return StepResult("onnx", "unsafe", "skipped", "the input is already an ONNX model")
    if state.model is None:
        raise FixError(
            "onnx export needs the model's architecture (--config with --run-model, or a "
            "TorchScript / torch.export file)"
        )
    src = state.inputs
    names = list(src.names)
    dyn = [
        {0: "batch", **{i + 1: d for i, d in enumerate(shape) if isinstance(d, str)}} for shape in src.shapes
    ]
    # a wrapped Hugging Face model names its outputs as the framework's exporters do
    outputs = list(getattr(state.model, "output_names", None) or ["output"])
    path = state.workdir / f"{state.input_path.stem}.onnx"
    # the PyTorch outputs at both parity shapes, computed once for every attempt; their shapes
    # also tell which output axes are dynamic
    shapes = shapes_to_check(state)
    probes = [src.batch(batch, **dims) for batch, dims in shapes]
    reference = torch_runner(state.model)
    refs = [reference(x) for x in probes]
    outputs += [f"output_{i}" for i in range(len(outputs), len(refs[0]))]
    sizes = [
        {"batch": b, **{d: dims.get(d, v) for d, v in src.dynamic_dims.items()}}
        for b, dims in shapes
    ]
    out_dyn = output_axes(refs, sizes)
    errors = []
    order = attempts(config)
    for i, (exporter, opset) in enumerate(order):
        try:
            # the first torch.export attempt exports plain self-attention batch-first; the
            # other attempts export the model exactly as written
            first_dynamo = exporter == "dynamo" and all(e != "dynamo" for e, _ in order[:i])
            rewrite = config.batch_first_attention and first_dynamo
            rewritten = _export(
                state.model, src.batch(2), path, names, dyn, outputs, exporter, opset, rewrite, out_dyn
            )
            saved = strip_debug_info(path, names, dyn)
            check_onnx(path)
            run = ort_runner(path, 1)
            checks = []
            for x, want in zip(probes, refs, strict=True):
                shape = "x".join(str(s) for s in x[0].shape)
                try:
                    got = run(x)
                except Exception as run_err:  # e.g. a Reshape with a baked-in size
                    tail = str(run_err).strip().splitlines()[0][-160:] if str(run_err).strip() else ""
                    raise FixError(
                        f"parity failed at input shape {shape}: onnxruntime cannot run it "
                        f"(shape baked into the graph?): ...{tail}"
                    ) from None
                ok, err = parity(want, got, state.budget.parity_atol, state.budget.parity_rtol)
                checks.append({"shape": shape, "max_abs_err": err, "ok": ok})
                if not ok:
                    raise FixError(f"parity failed at input shape {shape}: max abs err {err:.3g}")
        except Exception as err:  # exporter failures come in many types; try the next exporter
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # the exporter colours its messages
            used = opset if exporter == "dynamo" else min(opset, 17)
            errors.append(f"{exporter} opset {used}: {text.splitlines()[0] if text else type(err).__name__}")
            for f in state.workdir.glob(f"{path.name}*"):  # the export and its external data only
                f.unlink()
            continue
        files = onnx_files(path)
        state.onnx_path = state.exported_onnx = path
        used = opset if exporter == "dynamo" else min(opset, 17)
        note = f" (after {errors[0]})" if errors else ""
        return StepResult(
            "onnx",
            "unsafe",
            "applied",
            f"exported {path.name} with the {exporter} exporter (opset {used}){note}, {len(files)} file(s)"
            + (f", {saved / 1e3:.1f} kB of debug metadata stripped" if saved > 0 else ""),
            verified="ONNX checker passed; parity with PyTorch at "
            + ", ".join(f"{c['shape']} (max abs err {c['max_abs_err']:.2e})" for c in checks),
            evidence={
                "exporter": exporter,
                "opset": used,
                "attention_exported_batch_first": rewritten,
                "interface": {"inputs": names, "outputs": outputs, "dynamic_axes": dyn},
                "parity": checks,
                "fallback_reasons": errors,
                "files": [f.name for f in files],
            },
        )
    raise FixError("ONNX export failed: " + "; ".join(errors))
