"""Checkpoint files: format detection, static pickle safety scan, tensor metadata and lazy loading.

Modules, bottom to top: `types` (the typed records: TensorInfo, CheckpointInfo, Parsed ...),
`sniff` (format by content), `zipread` (tolerant zip), `pickle_scan` (opcode-level allowlist),
`readers` (bytes -> Parsed, never unpickles), `loaders` (tensors of cleared non-pickle files),
`read` (the public API and the `checkpoint` input kind), `layout` (model vs optimizer vs
metadata tensors), `tensor_stats` (one-pass statistics).

The public API is re-exported here: `read_checkpoint`, `iter_tensors`, `load_object`,
`CheckpointInfo`, `TensorInfo`, `escapes_dir` (see `read.py`).
"""

from mlaudit.inputs.checkpoint.read import (
    MIN_TORCH,
    artifact_details,
    iter_tensors,
    load_object,
    read_checkpoint,
    require_safe_torch,
    sniff_format,
)
from mlaudit.inputs.checkpoint.types import (
    DTYPE_BYTES,
    LOADABLE,
    PICKLE_FORMATS,
    CheckpointInfo,
    LayoutProblem,
    TensorInfo,
    escapes_dir,
)

__all__ = [
    "DTYPE_BYTES", "LOADABLE", "MIN_TORCH", "PICKLE_FORMATS", "CheckpointInfo", "LayoutProblem",
    "TensorInfo", "artifact_details", "escapes_dir", "iter_tensors", "load_object",
    "read_checkpoint", "require_safe_torch", "sniff_format",
]  # fmt: skip
