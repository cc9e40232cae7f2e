"""The numpy statistics (no torch) against the torch implementation on every fixture
checkpoint and on generated files covering every dtype, layout and edge value."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlaudit.inputs import InputError
from mlaudit.inputs.checkpoint import array_stats as np_path
from mlaudit.inputs.checkpoint import read_checkpoint
from mlaudit.inputs.checkpoint.arrays import NeedsTorch
from mlaudit.inputs.checkpoint.layout import build_layout

torch = pytest.importorskip("torch")
from mlaudit.inputs.checkpoint import torch_stats as torch_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "fixtures" / "build"
SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".onnx", ".npy", ".npz", ".json")
FORMATS_WITHOUT_STABLE_STORAGE = ("onnx", "npz", "numpy", "safetensors-index")


def _close(field: str, a: float, b: float, x: dict) -> bool:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return True
    if field == "sum":
        # float32 chunk sums of values that cancel: the error bound is eps * sum(|x|),
        # and sum(|x|) <= sqrt(n * sumsq)
        scale = math.sqrt(x["numel"] * x["sumsq"]) if math.isfinite(x["sumsq"]) else abs(a)
        return abs(a - b) <= 1e-5 * scale + 1e-30
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b))


def assert_same_stats(path: Path) -> bool:
    """Compare both implementations on one file; False when the file has no statistics."""
    try:
        info = read_checkpoint(path, path.name)
    except InputError:
        return False
    if not info.safe_to_load:
        return False
    layout = build_layout(info, None)
    try:
        ref = torch_path.compute_stats(layout)
    except Exception:  # torch cannot read it either: the numpy path must not call it readable
        with pytest.raises(InputError):
            np_path.compute_stats(layout)
        return True
    try:
        got = np_path.compute_stats(layout)
    except NeedsTorch as err:
        # quantized / sparse tensors, or storages the static listing does not name (issue 11's
        # known misreadings): torch still computes these files' statistics, so they must be
        # tensors the static records miss or types numpy cannot stand for
        named = {t.name for t in info.tensors}
        assert "no tensor record names" in err.reason or set(ref.tensors) - named or any(
            t.dtype.startswith("q") for t in info.tensors) or any(
            g.startswith("torch._utils._rebuild_") and not g.endswith(("_v2", "_v3", "parameter"))
            for g in info.globals_used), path
        return True
    assert list(got.tensors) == list(ref.tensors), path
    for name, r in ref.tensors.items():
        x, y = r.__dict__, got.tensors[name].__dict__
        if (x["alias_of"] and not y["alias_of"] and info.format in FORMATS_WITHOUT_STABLE_STORAGE):
            # The torch path keyed aliases by data pointer; for formats whose tensors are
            # fresh copies a freed tensor's address is reused by the next one, which made
            # it copy another tensor's statistics (seen on MLS008/pass). Not reproduced.
            continue
        for field, a in x.items():
            b = y[field]
            if isinstance(a, float) and isinstance(b, float):
                assert _close(field, a, b, x), (path, name, field, a, b)
            else:
                assert a == b, (path, name, field, a, b)
    assert got.duplicates == ref.duplicates, path
    return True


def _fixture_files() -> list[Path]:
    if not BUILD.is_dir():
        return []
    return sorted(p for p in BUILD.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def test_every_fixture_checkpoint_matches_the_torch_path():
    compared = [p for p in _fixture_files() if assert_same_stats(p)]
    assert len(compared) >= 50, f"only {len(compared)} fixture checkpoints had statistics"


def _edge_state() -> dict:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 48, generator=g)
    with_bad = torch.randn(40, 30, generator=g)
    with_bad[0, 0], with_bad[3, 1], with_bad[5, 5] = float("nan"), float("inf"), -float("inf")
    dead = torch.randn(20, 10, generator=g)
    dead[[2, 7, 11]] = 0.0
    dead[4, 3] = -0.0
    state = {
        "f32": base,
        "f32.t": base.t(),  # strided view of the same storage
        "f32.slice": base[5:20, ::3],  # offset + strides
        "f32.alias": base,  # same storage, same view: an alias
        "f32.bf16exact": torch.randn(33, 17, generator=g).bfloat16().float(),
        "f32.huge": torch.tensor([[1e30, -7e4], [3.0, 0.0]]),
        "f32.nonfinite": with_bad,
        "f32.allnan": torch.full((3, 3), float("nan")),
        "f32.dead": dead,
        "f32.scalar": torch.tensor(3.25),
        "f32.empty": torch.zeros(0, 4),
        "f64": torch.randn(9, 7, generator=g, dtype=torch.float64) * 1e5,
        "f64.one": torch.tensor([1.0 / 3.0], dtype=torch.float64),
        "f16": (torch.randn(50, 20, generator=g) * 100).half(),
        "f16.sub": torch.tensor([1e-6, 3e-5, 1.0, 0.0], dtype=torch.float16),
        "bf16": (torch.randn(70, 11, generator=g) * 1e5).bfloat16(),
        "bf16.one": torch.tensor([2.5], dtype=torch.bfloat16),
        "e4m3": (torch.randn(16, 8, generator=g) * 50).to(torch.float8_e4m3fn),
        "e5m2": (torch.randn(16, 8, generator=g) * 5e3).to(torch.float8_e5m2),
        "i64": torch.randint(-(2**40), 2**40, (12, 5), generator=g),
        "i64.small": torch.tensor([[0, 1], [0, 0], [-5, 3]]),
        "i32": torch.randint(-1000, 1000, (30,), generator=g, dtype=torch.int32),
        "i16": torch.tensor([[0, 0], [1, -2]], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([[0, 0, 0], [255, 1, 0]], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, False]]),
        "bool.one": torch.tensor([True]),
        "c64": torch.randn(4, 2, dtype=torch.complex64, generator=g),
        "dup.a": torch.arange(40, dtype=torch.float32).reshape(8, 5),
        "dup.b": torch.arange(40, dtype=torch.float32).reshape(8, 5),  # equal bytes, own storage
        "long_rows": torch.randn(3, 300_000, generator=g),  # rows larger than one chunk
        "many_rows": torch.randn(70_000, 8, generator=g),  # several chunks of whole rows
    }
    return {"state_dict": state, "epoch": 3, "optimizer": {"state": {}, "param_groups": []}}


def test_edge_dtypes_and_layouts_match_in_every_torch_format(tmp_path):
    state = _edge_state()
    zip_path = tmp_path / "edge.pt"
    torch.save(state, zip_path)
    assert assert_same_stats(zip_path)
    legacy = {k: v for k, v in state["state_dict"].items() if not k.startswith(("e4m3", "e5m2"))}
    legacy_path = tmp_path / "legacy.pt"
    torch.save(legacy, legacy_path, _use_new_zipfile_serialization=False)
    assert assert_same_stats(legacy_path)


def test_safetensors_npy_npz_match(tmp_path):
    import numpy as np
    from safetensors.torch import save_file

    state = {k: v.contiguous().clone() for k, v in _edge_state()["state_dict"].items()
             if k not in ("f32.alias", "c64") and v.numel()}
    st_path = tmp_path / "edge.safetensors"
    save_file(state, str(st_path))
    assert assert_same_stats(st_path)
    arrays = {k.replace(".", "_"): v.numpy() for k, v in state.items()
              if v.dtype not in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)}
    np.savez(tmp_path / "edge.npz", **arrays)
    assert assert_same_stats(tmp_path / "edge.npz")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(arrays["f32"]))
    assert assert_same_stats(tmp_path / "fortran.npy")


def test_a_view_past_its_storage_is_an_error_not_a_read(tmp_path):
    """A forged stride must not make numpy read outside the storage bytes."""
    from mlaudit.inputs.checkpoint.arrays import Reader, Storage, StoredTensor

    storage = Storage(16, data=__import__("numpy").zeros(16, dtype="u1"))
    bad = StoredTensor("w", "float32", (2, 2), storage, "k", 0, (1, 100), Reader())
    with pytest.raises(ValueError, match="past its storage"):
        bad.full()
