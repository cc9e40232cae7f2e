"""MLS001-MLS008: security of model files, judged from the static scan (nothing is loaded)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.checkpoint import CheckpointInfo, escapes_dir
from mlaudit.model import Finding, Location

TORCH_PICKLE_FORMATS = ("torch-zip", "torch-legacy", "lightning")


def _issues(info: CheckpointInfo, kinds: set[str], ctx: RuleContext, what: str) -> Iterator[Finding]:
    # One finding per (member, global): importing, calling and BUILDing one class is one problem.
    grouped: dict[tuple[str, str], list] = {}
    for issue in info.issues:
        if issue.kind in kinds:
            grouped.setdefault((issue.member, issue.target), []).append(issue)
    for (member, target), issues in grouped.items():
        details = "; ".join(dict.fromkeys(i.detail for i in issues))
        where = f" (in {member})" if member else ""
        yield ctx.finding(
            f"{what} {target}{where}: {details}",
            Location(info.rel, pointer=target),
            evidence={
                "global": target,
                "kinds": sorted({i.kind for i in issues}),
                "member": member,
                "format": info.format,
            },
            key=member,
        )


@rule("MLS001", needs="checkpoint")
def code_execution_on_load(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    yield from _issues(info, {"dangerous", "dynamic"}, ctx, "loading runs")


@rule("MLS002", needs="checkpoint")
def non_allowlisted_global(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    yield from _issues(info, {"global", "call", "build"}, ctx, "non-allowlisted global")


@rule("MLS003", needs="checkpoint")
def metadata_object(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    for issue in info.issues:
        if issue.kind == "metadata":
            yield ctx.finding(
                f"holds {issue.detail} ({issue.target}); harmless, but not plain data",
                Location(info.rel, pointer=issue.target),
                evidence={"global": issue.target, "member": issue.member},
                key=issue.member,
                fix_hint="store it as a plain dict or string instead",
            )


QUANTIZED_DTYPES = frozenset({"qint8", "quint8", "qint32", "quint4x2", "quint2x4"})


@rule("MLS004", needs="checkpoint")
def pickle_where_safetensors_would_do(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    if info.format not in TORCH_PICKLE_FORMATS or info.error_issues:
        return
    if len(info.tensors) < ctx.params.min_tensors:
        return
    if any(t.dtype in QUANTIZED_DTYPES for t in info.tensors):
        return  # safetensors has no quantized dtypes (scale/zero point): it could not hold them
    yield ctx.finding(
        f"{info.format} file with {len(info.tensors)} tensors ({info.parameters:,} values) "
        "is pickle-based; safetensors could hold these tensors without code execution on load",
        Location(info.rel),
        evidence={"format": info.format, "tensors": len(info.tensors), "parameters": info.parameters},
        fix_hint=ctx.fix_command(info.rel, "safetensors"),
    )


@rule("MLS005", needs="checkpoint")
def untrusted_code_bearing_format(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    if info.format not in ("torchscript", "joblib"):
        return
    trusted = ctx.params.trusted_paths
    if any(fnmatch.fnmatch(info.rel, glob) for glob in trusted):
        return
    what = (
        "TorchScript archive (runs its serialized code when loaded)"
        if info.format == "torchscript"
        else "joblib file (loaded with full pickle)"
    )
    yield ctx.finding(
        f"{what} outside the {len(trusted)} trusted path pattern(s)",
        Location(info.rel),
        evidence={"format": info.format, "trusted_patterns": len(trusted)},
    )


@rule("MLS006", needs="checkpoint")
def oversized_safetensors_header(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    limit = ctx.params.max_header_bytes
    if info.header_bytes is not None and info.header_bytes > limit:
        yield ctx.finding(
            f"safetensors header of {info.header_bytes:,} bytes exceeds the limit of {limit:,}",
            Location(info.rel),
            evidence={"header_bytes": info.header_bytes, "limit": limit},
        )


@rule("MLS007", needs="checkpoint")
def invalid_safetensors_layout(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    for problem in info.layout_problems:
        yield ctx.finding(
            f"{problem.tensor}: {problem.message}",
            Location(info.rel, pointer=problem.tensor),
            evidence=dict(problem.evidence),
            key=problem.message,
        )


@rule("MLS008", needs="checkpoint")
def onnx_external_data_escapes(info: CheckpointInfo, ctx: RuleContext) -> Iterator[Finding]:
    if info.format != "onnx":
        return
    base = info.path.parent
    for location in sorted(set(info.external_data)):
        if escapes_dir(base, location):
            yield ctx.finding(
                f"external data location {location!r} leaves the model directory",
                Location(info.rel, pointer=location),
                evidence={"location": location},
                key=location,
            )
