"""Checkpoint data types: what the readers find and what checks and fixers consume.

This module sits at the bottom of `mlaudit.inputs.checkpoint`: it imports nothing from mlaudit
at run time, so the readers (`readers.py`, `loaders.py`), the public API (`read.py`) and the
rules can all use the same typed records without import circles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the scanner (pickletools tables) is imported only when a file is read
    from mlaudit.inputs.checkpoint.pickle_scan import Issue, PickleResult

DTYPE_BYTES = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
    "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "uint16": 2, "uint32": 4, "uint64": 8,
    "qint8": 1, "quint8": 1, "qint32": 4,
}  # fmt: skip

# Formats whose tensors mlaudit may load, once the static verdict is clean.
LOADABLE = frozenset(
    {"torch-zip", "torch-legacy", "lightning", "safetensors", "safetensors-index", "numpy", "npz", "onnx"}
)
PICKLE_FORMATS = frozenset(
    {"torch-zip", "torch-legacy", "lightning", "pickle", "joblib", "torchscript", "torch-export"}
)


@dataclass(frozen=True)
class TensorInfo:
    """Metadata of one tensor, without its data.

    `name` is the dotted path inside the checkpoint (e.g. `state_dict.fc.weight`).
    `storage_key` identifies the underlying storage: tensors sharing it share bytes.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    storage_key: str | None = None
    storage_offset: int = 0
    storage_nbytes: int | None = None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES.get(self.dtype, 4)


@dataclass(frozen=True)
class LayoutProblem:
    """A structural problem in a header (safetensors offsets, dtypes, sizes)."""

    tensor: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointInfo:
    """What is known about a checkpoint file before any tensor data is read."""

    path: Path
    rel: str
    format: str
    size_bytes: int
    tensors: tuple[TensorInfo, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    top_level_keys: tuple[str, ...] = ()
    safe_to_load: bool = False
    # Static safety verdict: every reason a pickle is not plain data (see pickle_scan.Issue).
    issues: tuple[Issue, ...] = ()
    # Every global the file's pickles name, as "module.name", in order of appearance.
    globals_used: tuple[str, ...] = ()
    # safetensors: length of the JSON header; problems with its offsets/dtypes/shapes.
    header_bytes: int | None = None
    layout_problems: tuple[LayoutProblem, ...] = ()
    # ONNX: external-data locations exactly as written in the model.
    external_data: tuple[str, ...] = ()
    # Where this file sits: "huggingface" when a sibling config.json describes a model.
    container: str | None = None
    # Things the reader tolerated (bad CRCs, renamed local headers), for `-v` and tests.
    notes: tuple[str, ...] = ()
    # Why the verdict cannot be "clean" although the file was read (bytes a loader would use
    # that the scan could not account for, a parse error after a payload, 0 tensors): MLA002.
    inconclusive: tuple[str, ...] = ()

    @property
    def parameters(self) -> int:
        """Elements over distinct storages views (shared tensors counted once)."""
        seen: set[tuple] = set()
        total = 0
        for t in self.tensors:
            key = (t.storage_key, t.storage_offset, t.shape) if t.storage_key else (t.name,)
            if key not in seen:
                seen.add(key)
                total += t.numel
        return total

    @property
    def pickle_based(self) -> bool:
        """True when loading this format means unpickling."""
        return self.format in PICKLE_FORMATS

    @property
    def error_issues(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.is_error)




class ReadError(Exception):
    """The file cannot be fully parsed; the message is one line."""


@dataclass
class Parsed:
    """What a reader found; `checkpoint.read_checkpoint` turns it into a CheckpointInfo."""

    format: str
    tensors: list[TensorInfo] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    top_level_keys: tuple[str, ...] = ()
    issues: list[Issue] = field(default_factory=list)
    globals_used: list[str] = field(default_factory=list)
    header_bytes: int | None = None
    layout_problems: list[LayoutProblem] = field(default_factory=list)
    external_data: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    inflated: int = 0
    pickles: int = 0  # pickles scanned (all archive levels)
    inconclusive: list[str] = field(default_factory=list)  # see CheckpointInfo.inconclusive

    def absorb(self, result: PickleResult) -> None:
        self.inconclusive += [f"{result.member}: {o}" if result.member else o for o in result.oddities]
        known, seen = set(self.issues), set(self.globals_used)
        for issue in result.issues:
            if issue not in known:
                known.add(issue)
                self.issues.append(issue)
        for m, n in result.globals:
            dotted = f"{m}.{n}"
            if dotted not in seen:
                seen.add(dotted)
                self.globals_used.append(dotted)




def escapes_dir(base: Path, location: str) -> bool:
    """True when `location` (relative path from a model file) leaves `base`."""
    if not location or os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location[:3]:
        return True
    base_abs = os.path.abspath(str(base))
    target = os.path.abspath(os.path.join(base_abs, location.replace("\\", "/")))
    return not (target == base_abs or target.startswith(base_abs.rstrip(os.sep) + os.sep))
