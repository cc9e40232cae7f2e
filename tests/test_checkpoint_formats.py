"""Format readers: detection by content, tensor metadata without loading, lazy loading whose
names match the metadata, tolerant zip reading, nesting limits, and the scan inventory."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import pytest

from mlaudit.inputs import InputError
from mlaudit.inputs.checkpoint import iter_tensors, load_object, read_checkpoint


@pytest.fixture(scope="module")
def model_state():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _read(path: Path):
    return read_checkpoint(path, path.name)


def _names_match(info) -> None:
    loaded = [name for name, _ in iter_tensors(info)]
    assert loaded == [t.name for t in info.tensors]


def test_torch_zip_and_legacy_by_content_not_extension(tmp_path, model_state):
    import torch

    torch.save(model_state, tmp_path / "weights.bin")
    torch.save(model_state, tmp_path / "old.safetensors", _use_new_zipfile_serialization=False)
    zipped, legacy = _read(tmp_path / "weights.bin"), _read(tmp_path / "old.safetensors")
    assert (zipped.format, legacy.format) == ("torch-zip", "torch-legacy")
    for info in (zipped, legacy):
        assert [t.name for t in info.tensors] == ["0.weight", "0.bias", "1.weight", "1.bias"]
        assert info.parameters == 4 * 3 + 3 + 3 * 2 + 2
        assert info.pickle_based and info.safe_to_load
        _names_match(info)


def test_shared_storage_counts_once(tmp_path):
    import torch

    base = torch.zeros(10)
    torch.save({"a": base, "b": base, "view": base[2:5]}, tmp_path / "tied.pt")
    info = _read(tmp_path / "tied.pt")
    assert len(info.tensors) == 3
    assert {t.storage_key for t in info.tensors} == {"0"}
    assert info.tensors[2].storage_offset == 2 and info.tensors[2].storage_nbytes == 40
    assert info.parameters == 10 + 3  # a and b are one tensor; the view is its own shape


def test_lightning_checkpoint(tmp_path, model_state):
    import torch

    torch.save(
        {
            "state_dict": model_state,
            "pytorch-lightning_version": "2.4.0",
            "epoch": 1,
            "hyper_parameters": {"lr": 0.01},
        },
        tmp_path / "last.ckpt",
    )
    info = _read(tmp_path / "last.ckpt")
    assert info.format == "lightning"
    assert info.tensors[0].name == "state_dict.0.weight"
    assert info.metadata["hyper_parameters.lr"] == 0.01
    _names_match(info)


def test_safetensors_single_and_sharded_index(tmp_path, model_state):
    from safetensors.torch import save_file

    save_file(model_state, str(tmp_path / "model.safetensors"))
    info = _read(tmp_path / "model.safetensors")
    assert info.format == "safetensors" and info.safe_to_load and info.header_bytes > 0
    _names_match(info)
    hf = tmp_path / "hf"
    hf.mkdir()
    names = list(model_state)
    save_file({n: model_state[n] for n in names[:2]}, str(hf / "model-00001-of-00002.safetensors"))
    save_file({n: model_state[n] for n in names[2:]}, str(hf / "model-00002-of-00002.safetensors"))
    weight_map = {n: f"model-0000{1 if i < 2 else 2}-of-00002.safetensors" for i, n in enumerate(names)}
    (hf / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (hf / "config.json").write_text(json.dumps({"model_type": "mlp", "architectures": ["MLP"]}))
    index = _read(hf / "model.safetensors.index.json")
    assert index.format == "safetensors-index"
    assert index.container == "huggingface"
    assert sorted(t.name for t in index.tensors) == sorted(names)
    assert index.parameters == info.parameters
    assert sorted(n for n, _ in iter_tensors(index)) == sorted(names)


def test_safetensors_missing_shard_is_inconclusive(tmp_path):
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "gone.safetensors"}})
    )
    with pytest.raises(InputError, match="missing"):
        _read(tmp_path / "model.safetensors.index.json")


def test_safetensors_layout_problems_block_loading(tmp_path):
    header = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        }
    ).encode()
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 12)
    info = _read(tmp_path / "bad.safetensors")
    assert [p.tensor for p in info.layout_problems] == ["b"]
    assert not info.safe_to_load
    with pytest.raises(InputError, match="refusing"):
        list(iter_tensors(info))


def test_numpy_npy_and_npz(tmp_path):
    import numpy as np

    np.save(tmp_path / "a.npy", np.zeros((3, 4), dtype=np.float16))
    np.savez(tmp_path / "b.npz", x=np.ones(5, dtype=np.int32), y=np.zeros((2, 2)))
    npy, npz = _read(tmp_path / "a.npy"), _read(tmp_path / "b.npz")
    assert (npy.format, npy.tensors[0].dtype, npy.tensors[0].shape) == ("numpy", "float16", (3, 4))
    assert npz.format == "npz" and [(t.name, t.dtype) for t in npz.tensors] == [
        ("x", "int32"),
        ("y", "float64"),
    ]
    _names_match(npy)
    _names_match(npz)


def test_onnx_initializers_constants_and_subgraphs(tmp_path):
    from fixtures.gen.readers_cases import _onnx_model

    _onnx_model(tmp_path, "weights.bin")
    import numpy as np

    (tmp_path / "weights.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    info = _read(tmp_path / "model.onnx")
    assert info.format == "onnx"
    names = {t.name for t in info.tensors}
    assert {"W", "C", "pick.then_branch.then_out", "pick.else_branch.else_out"} <= names
    assert info.external_data == ("weights.bin",)
    loaded = dict(iter_tensors(info))
    assert loaded["W"].shape == (2, 3) and float(loaded["W"][1, 2]) == 5.0


def test_onnx_external_data_outside_dir_is_never_loaded(tmp_path):
    from fixtures.gen.readers_cases import _onnx_model

    _onnx_model(tmp_path, "../../etc/passwd")
    info = _read(tmp_path / "model.onnx")
    with pytest.raises(InputError, match="outside the model directory"):
        list(iter_tensors(info))


def test_torchscript_export_and_joblib_are_read_but_never_loaded(tmp_path):
    import joblib
    import numpy as np
    import torch

    lin = torch.nn.Linear(3, 2)
    torch.jit.script(lin).save(str(tmp_path / "ts.pt"))
    torch.export.save(torch.export.export(lin, (torch.randn(1, 3),)), str(tmp_path / "m.pt2"))
    joblib.dump({"coef": np.zeros((2, 5))}, tmp_path / "m.joblib")
    for name, fmt, params in (
        ("ts.pt", "torchscript", 8),
        ("m.pt2", "torch-export", 8),
        ("m.joblib", "joblib", 10),
    ):
        info = _read(tmp_path / name)
        assert (info.format, info.parameters) == (fmt, params), name
        assert info.error_issues == (), name
        with pytest.raises(InputError, match="never loads"):
            load_object(info)


def test_lfs_pointer_is_not_scannable(tmp_path):
    (tmp_path / "model.pt").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 10\n"
    )
    with pytest.raises(InputError, match="not scannable: Git LFS pointer"):
        _read(tmp_path / "model.pt")


def test_tolerant_zip_sees_members_python_zipfile_rejects(tmp_path):
    import torch

    from fixtures.gen.attacks import _rename_local_header

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buf)
    data = _rename_local_header(buf.getvalue(), "archive/data.pkl", "archive/data.txt")
    (tmp_path / "odd.pt").write_bytes(data)
    with pytest.raises(zipfile.BadZipFile), zipfile.ZipFile(tmp_path / "odd.pt") as z:
        z.read("archive/data.pkl")
    info = _read(tmp_path / "odd.pt")
    assert [t.name for t in info.tensors] == ["w"]
    assert any("local header" in n for n in info.notes)
    assert any("bad CRC" in n for n in info.notes)


def test_nesting_depth_is_limited(tmp_path):
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buf)
    data = buf.getvalue()
    for level in range(6):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr(f"level{level}.zip", data)
        data = out.getvalue()
    (tmp_path / "deep.bin").write_bytes(data)
    with pytest.raises(InputError, match="nested deeper"):
        _read(tmp_path / "deep.bin")


def test_scan_reports_format_tensors_and_parameters_per_file(tmp_path, run_cli, model_state):
    import numpy as np
    import torch
    from safetensors.torch import save_file

    torch.save(model_state, tmp_path / "a.pt")
    save_file(model_state, str(tmp_path / "b.safetensors"))
    np.save(tmp_path / "c.npy", np.zeros((10, 10), dtype=np.float32))
    out = tmp_path / "r.json"
    code, _, err = run_cli(
        "scan", tmp_path, "--isolated", "--select", "MLS,MLA", "--format", "json", "--output", out
    )
    assert code in (0, 1), err
    report = json.loads(out.read_text())
    rows = {Path(a["path"]).name: a["details"] for a in report["artifacts"] if a["kind"] == "checkpoint"}
    assert rows["a.pt"]["format"] == "torch-zip" and rows["a.pt"]["parameters"] == 23
    assert rows["b.safetensors"]["tensors"] == 4 and rows["b.safetensors"]["parameters"] == 23
    assert (rows["c.npy"]["format"], rows["c.npy"]["parameters"]) == ("numpy", 100)
    code, text, _ = run_cli("scan", tmp_path, "--isolated", "--select", "MLS,MLA")
    assert "torch-zip" in text and "safetensors" in text and "numpy" in text


def test_mutated_files_never_crash_the_reader(tmp_path, model_state):
    """Seeded byte mutations of real files: each read either succeeds or is an InputError
    (inconclusive); never another exception, never a hang."""
    import random

    import numpy as np
    import torch
    from safetensors.torch import save_file

    rng = random.Random(7)
    torch.save(model_state, tmp_path / "z.pt")
    torch.save(model_state, tmp_path / "l.pt", _use_new_zipfile_serialization=False)
    save_file(model_state, str(tmp_path / "s.safetensors"))
    np.save(tmp_path / "n.npy", np.zeros(8))
    seeds = [(p.suffix, p.read_bytes()) for p in sorted(tmp_path.iterdir())]
    outcomes = {"ok": 0, "inconclusive": 0}
    for i in range(240):
        suffix, data = seeds[i % len(seeds)]
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(buf))
            buf[pos] = rng.randrange(256)
        if i % 5 == 0:
            buf = buf[: rng.randrange(1, len(buf))]
        path = tmp_path / f"m{i}{suffix}"
        path.write_bytes(bytes(buf))
        try:
            _read(path)
            outcomes["ok"] += 1
        except InputError:
            outcomes["inconclusive"] += 1
    assert outcomes["inconclusive"] > 0 and sum(outcomes.values()) == 240


def test_deeply_nested_pickle_is_inconclusive_not_a_crash(tmp_path):
    depth = 200_000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    (tmp_path / "deep.pkl").write_bytes(data)
    try:
        info = _read(tmp_path / "deep.pkl")
    except InputError as err:
        assert "deep" in str(err) or "parsed" in str(err)
    else:
        assert info.tensors == ()
