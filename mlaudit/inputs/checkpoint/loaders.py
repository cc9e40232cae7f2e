"""Tensor loading for non-pickle formats, used only after the static verdict cleared a file.

safetensors through `safe_open` (lazy, one tensor at a time), numpy with
`allow_pickle=False` (memory-mapped), ONNX initializers through onnx's numpy helper with
external data only from inside the model directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlaudit.inputs import InputError
from mlaudit.inputs.checkpoint.types import CheckpointInfo, escapes_dir


def iter_tensors(info: CheckpointInfo) -> Iterator[tuple[str, Any]]:
    """(name, torch.Tensor) pairs for safetensors, sharded indexes, numpy, npz and ONNX."""
    import torch

    if info.format == "safetensors":
        from safetensors import safe_open

        with safe_open(str(info.path), framework="pt") as fh:
            for name in fh.keys():
                yield name, fh.get_tensor(name)
        return
    if info.format == "safetensors-index":
        from safetensors import safe_open

        by_shard: dict[str, list[str]] = {}
        for t in info.tensors:
            by_shard.setdefault((t.storage_key or ":").split(":", 1)[0], []).append(t.name)
        for shard, names in by_shard.items():
            with safe_open(str(info.path.parent / shard), framework="pt") as fh:
                for name in names:
                    yield name, fh.get_tensor(name)
        return
    if info.format in ("numpy", "npz"):
        import numpy as np

        loaded = np.load(info.path, allow_pickle=False, mmap_mode="r" if info.format == "numpy" else None)
        if info.format == "numpy":
            yield info.tensors[0].name, torch.from_numpy(np.array(loaded))
            return
        with loaded as archive:
            for t in info.tensors:
                yield t.name, torch.from_numpy(np.array(archive[t.name]))
        return
    if info.format == "onnx":
        yield from _onnx_tensors(info)
        return
    raise InputError(info.rel, f"refusing to load: mlaudit never loads {info.format} files")


def _onnx_tensors(info: CheckpointInfo) -> Iterator[tuple[str, Any]]:
    import onnx
    import torch
    from onnx import numpy_helper

    if any(escapes_dir(info.path.parent, loc) for loc in info.external_data):
        raise InputError(info.rel, "refusing to load: external data outside the model directory")
    model = onnx.load(str(info.path), load_external_data=False)
    if info.external_data:
        onnx.external_data_helper.load_external_data_for_model(model, str(info.path.parent))
    wanted = {t.name for t in info.tensors}

    def walk(graph: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        for init in graph.initializer:
            if prefix + init.name in wanted:
                yield prefix + init.name, torch.from_numpy(numpy_helper.to_array(init).copy())
        for node in graph.node:
            for attr in node.attribute:
                if node.op_type == "Constant" and attr.name == "value" and attr.HasField("t"):
                    name = prefix + (node.output[0] if node.output else node.name)
                    if name in wanted:
                        yield name, torch.from_numpy(numpy_helper.to_array(attr.t).copy())
                if attr.HasField("g"):
                    yield from walk(attr.g, f"{prefix}{node.name or node.op_type}.{attr.name}.")
                for i, g in enumerate(attr.graphs):
                    yield from walk(g, f"{prefix}{node.name or node.op_type}.{attr.name}{i}.")

    yield from walk(model.graph, "")
