"""Checkpoint reading: the one gate every tensor read in mlaudit goes through.

Public API (used by checks and fixers; keep it stable):
- `read_checkpoint(path, rel) -> CheckpointInfo`: format, tensor metadata, plain metadata and
  the safety verdict. Detects the format by content, scans every pickle statically
  (`mlaudit.inputs.checkpoint.pickle_scan`) and reads no tensor data. Raises InputError when the file
  cannot be fully parsed (the engine reports that as MLA002, never as clean).
- `iter_tensors(info) -> Iterator[(name, torch.Tensor)]`: tensors one at a time, lazily.
- `load_object(info) -> Any`: the whole deserialized object (torch.load weights_only=True).
Both loaders refuse anything the safety verdict did not clear, and refuse to run on a torch
older than `MIN_TORCH` (earlier releases have known `weights_only=True` bypasses).
Checks that read tensor data should skip files with `not info.safe_to_load` (the MLS rules
and MLA002 already report them) rather than let the loaders' InputError escape.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.checkpoint.sniff import sniff
from mlaudit.inputs.checkpoint.types import LOADABLE, CheckpointInfo
from mlaudit.model import ArtifactSummary

# torch 2.6.0 fixed CVE-2025-32434 (remote code execution through torch.load with
# weights_only=True, via the legacy tar format); 2.5.x and earlier also had
# GHSA-53q9-r3pm-6pq6 class bypasses. Nothing older is ever used to load.
MIN_TORCH = (2, 6, 0)
TORCH_FIX_NOTE = "torch 2.6.0 fixed CVE-2025-32434 (code execution through torch.load(weights_only=True))"


def sniff_format(path: Path) -> str:
    """Format by content (magic bytes), not extension. Raises InputError for unknown content."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    return sniff(head, path.name, path.stat().st_size)


def read_checkpoint(path: Path, rel: str) -> CheckpointInfo:
    """Read a checkpoint's format, tensor metadata and safety verdict. Raises InputError."""
    # imported on first read, not at start-up: the pickle scanner's tables cost ~10 ms
    from mlaudit.inputs import remote
    from mlaudit.inputs.checkpoint import readers

    obj = remote.remote_object(path)
    try:
        size = remote.size_of(path)
    except OSError as err:
        raise InputError(rel, f"cannot read: {err.strerror}") from None
    if size == 0:
        raise InputError(rel, "empty file (0 bytes)")
    buf: Any = None
    if obj is not None:  # an object in a bucket: read by ranges, or downloaded whole first
        try:
            opened = remote.open_buffer(path)
        except (OSError, remote.RemoteError) as err:
            raise InputError(rel, f"cannot read {obj.url}: {err}") from None
        buf = opened[0] if opened is not None else None
    try:
        if buf is None:
            with open(path, "rb") as fh:
                buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as err:
        raise InputError(rel, f"cannot read: {err}") from None
    try:
        parsed = readers.read_any(buf, path, rel, size)
    except readers.ReadError as err:
        raise InputError(rel, str(err)) from None
    except MemoryError:
        raise InputError(rel, "exceeds the memory mlaudit allows for reading headers") from None
    except RecursionError:
        raise InputError(rel, "object nesting too deep to analyse") from None
    except OSError as err:  # a ranged read of a remote object failed: not read, not clean
        raise InputError(rel, f"cannot read: {err}") from None
    except Exception as err:  # fail closed: a reader bug or an unforeseen corruption is inconclusive
        raise InputError(rel, f"could not be parsed ({type(err).__name__}: {err})") from None
    finally:
        if obj is not None and hasattr(buf, "bytes_read"):
            obj.bytes_read += buf.bytes_read
            obj.requests += buf.requests
        buf.close()
    return CheckpointInfo(
        path=path,
        rel=rel,
        format=parsed.format,
        size_bytes=size,
        tensors=tuple(parsed.tensors),
        metadata=parsed.metadata,
        top_level_keys=parsed.top_level_keys,
        safe_to_load=parsed.format in LOADABLE
        and not any(i.is_error for i in parsed.issues)
        and not parsed.layout_problems
        and not parsed.inconclusive,
        issues=tuple(parsed.issues),
        globals_used=tuple(parsed.globals_used),
        header_bytes=parsed.header_bytes,
        layout_problems=tuple(parsed.layout_problems),
        external_data=tuple(parsed.external_data),
        container=_container(path),
        notes=tuple(parsed.notes),
        inconclusive=tuple(dict.fromkeys(parsed.inconclusive)),
    )


def _container(path: Path) -> str | None:
    """'huggingface' when a sibling config.json describes a transformers model."""
    cfg = path.parent / "config.json"
    try:
        if cfg.is_file() and cfg.stat().st_size < 1_000_000:
            text = cfg.read_text(encoding="utf-8", errors="replace")
            if '"model_type"' in text or '"architectures"' in text:
                return "huggingface"
    except OSError:
        return None
    return None


def require_safe_torch(rel: str) -> Any:
    """Import torch, refusing versions older than MIN_TORCH (known weights_only bypasses)."""
    import torch

    version = torch.__version__.split("+")[0]
    parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])
    if parts < MIN_TORCH:
        raise InputError(
            rel,
            f"refusing to load with torch {version}: {TORCH_FIX_NOTE}; "
            f"upgrade to torch >= {'.'.join(map(str, MIN_TORCH))}",
        )
    return torch


def _metadata_classes(info: CheckpointInfo) -> list[Any]:
    """The benign metadata classes this file names, to allow for weights_only loading."""
    import argparse
    import pathlib

    wanted = {i.target for i in info.issues if i.kind == "metadata"}
    out: list[Any] = []
    for cls in (
        argparse.Namespace,
        pathlib.Path,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        pathlib.PurePath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
    ):
        names = {f"{cls.__module__}.{cls.__name__}", f"pathlib.{cls.__name__}", f"argparse.{cls.__name__}"}
        if names & wanted:
            out.append(cls)
    if any(g.startswith("numpy.") for g in info.globals_used):
        # numpy scalars/arrays in metadata: allowlisted statically, so allow them for torch too.
        import numpy as np

        core = getattr(np, "_core", None) or np.core
        out += [core.multiarray.scalar, core.multiarray._reconstruct, np.dtype, np.ndarray]
        # files written under numpy < 2 name numpy.core.*: the same functions, another path
        out += [(core.multiarray.scalar, "numpy.core.multiarray.scalar"),
                (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct")]
        out += [
            type(np.dtype(c))
            for c in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1", "c8", "c16")
        ]
    return out


def make_local(info: CheckpointInfo) -> None:
    """Download a remote checkpoint whole (with its shards or external data) before its
    tensor data is read; nothing for a local file. Raises InputError."""
    from mlaudit.inputs import remote

    siblings = {*info.external_data}
    if info.format == "safetensors-index":
        siblings |= {t.storage_key.split(":", 1)[0] for t in info.tensors if t.storage_key}
    try:
        remote.ensure_local(info.path, sorted(siblings))
    except (OSError, remote.RemoteError) as err:
        raise InputError(info.rel, f"cannot download for tensor data: {err}") from None


def _torch_load(info: CheckpointInfo) -> Any:
    import pickle
    import zipfile

    torch = require_safe_torch(info.rel)
    make_local(info)
    mmap_ok = info.format in ("torch-zip", "lightning")
    extra = _metadata_classes(info)
    import warnings

    try:
        # torch warns about TypedStorage / quantized tensors of old files on stderr; the
        # report, not a library warning, is what the user reads
        with torch.serialization.safe_globals(extra), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # weights_only=True always: mlaudit never falls back to full unpickling.
            if info.path.suffix.lower() == ".safetensors":
                # torch.load picks its safetensors reader by file name; the content here is a
                # torch pickle, so hand it a file object (no mmap for file objects).
                with open(info.path, "rb") as fh:
                    return torch.load(fh, map_location="cpu", weights_only=True)
            return torch.load(info.path, map_location="cpu", weights_only=True, mmap=mmap_ok)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        zipfile.BadZipFile,
        AttributeError,
        ImportError,
        TypeError,
    ) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(info.rel, f"cannot be read safely: {first}") from None


def _refuse_unless_safe(info: CheckpointInfo) -> None:
    if info.safe_to_load:
        return
    if info.error_issues:
        first = info.error_issues[0]
        raise InputError(info.rel, f"refusing to load: the safety scan flagged {first.target}")
    if info.layout_problems:
        raise InputError(info.rel, f"refusing to load: {info.layout_problems[0].message}")
    raise InputError(info.rel, f"refusing to load: mlaudit never loads {info.format} files")


def _flatten(obj: Any, prefix: str, out: dict[str, Any], meta: dict[str, Any]) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, meta)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out, meta)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        meta[prefix] = obj


def load_object(info: CheckpointInfo) -> Any:
    """The whole checkpoint object; only for files the safety verdict cleared.

    torch formats: `torch.load(weights_only=True, mmap=True)`; safetensors (and sharded
    indexes): a dict of tensors; numpy/npz/onnx: a dict of tensors converted to torch."""
    _refuse_unless_safe(info)
    if info.format in ("torch-zip", "torch-legacy", "lightning"):
        return _torch_load(info)
    require_safe_torch(info.rel)
    return dict(iter_tensors(info))


def iter_tensors(info: CheckpointInfo) -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs one at a time; names match `info.tensors`."""
    _refuse_unless_safe(info)
    if info.format in ("torch-zip", "torch-legacy", "lightning"):
        flat: dict[str, Any] = {}
        _flatten(_torch_load(info), "", flat, {})
        yield from flat.items()
        return
    require_safe_torch(info.rel)
    make_local(info)
    from mlaudit.inputs.checkpoint import loaders  # safetensors / onnx / numpy: heavy, lazy

    try:
        yield from loaders.iter_tensors(info)
    except InputError:
        raise
    except Exception as err:  # a format library's own error types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(info.rel, f"cannot read tensors: {first}") from None


def artifact_details(info: CheckpointInfo) -> dict[str, Any]:
    """What the report's checkpoint table shows for one file."""
    details: dict[str, Any] = {
        "format": info.format,
        "tensors": len(info.tensors),
        "parameters": info.parameters,
        "size_bytes": info.size_bytes,
    }
    if info.container:
        details["container"] = info.container
    errors = info.error_issues
    if errors:
        details["verdict"] = "unsafe"
    elif info.inconclusive:
        details["verdict"] = "inconclusive"
    else:
        details["verdict"] = "metadata" if info.issues else "clean"
    return details


@input_kind("checkpoint", scope="file", file_kinds=("checkpoint",))
def load_checkpoint(session, file) -> CheckpointInfo:
    info = read_checkpoint(file.path, file.rel)
    details = artifact_details(info)
    from mlaudit.inputs.remote import remote_object

    obj = remote_object(file.path)
    if obj is not None:  # what reading it cost: ranged reads, or one whole download
        details["remote"] = {"url": obj.url, "bytes_read": obj.bytes_read, "requests": obj.requests,
                             "whole_download": obj.whole}
    session.add_artifact(ArtifactSummary(file.rel, "checkpoint", details))
    if info.inconclusive:
        # read, but not to the end of what a loader uses: MLA002 beside the file's other findings
        session.add_inconclusive(InputError(file.rel, "; ".join(info.inconclusive)))
    return info
