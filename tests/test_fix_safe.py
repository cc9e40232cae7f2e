"""`mlaudit fix` safe fixes: bit-exact output, input untouched, dry run, overwrite refusal, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from fixhelp import FAST, TRAINED, digest, tree

torch = pytest.importorskip("torch")


def _model_state(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in ckpt["model"].items()}


def test_default_safe_fixes_are_bit_exact_and_leave_the_input_alone(run_cli, tmp_path):
    src = tmp_path / "mlp.pt"
    shutil.copyfile(TRAINED / "mlp.pt", src)
    before = digest(src)
    code, out, err = run_cli("fix", src, *FAST)
    assert code == 0, err
    out_dir = tmp_path / "mlp-fixed"
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "fix-report.html",
        "fix-report.json",
        "fix-report.md",
        "mlp.safetensors",
    ]
    from safetensors.torch import load_file

    fixed = load_file(str(out_dir / "mlp.safetensors"))
    want = _model_state(src)
    assert set(fixed) == set(want)  # optimizer state gone, module. prefix stripped
    for name, t in want.items():
        assert fixed[name].dtype == t.dtype and torch.equal(
            fixed[name].view(torch.uint8), t.view(torch.uint8)
        )
    assert digest(src) == before
    report = json.loads((out_dir / "fix-report.json").read_text())
    assert report["status"] == "ok" and report["input_sha256"] == before
    assert [s["name"] for s in report["steps"]] == [
        "strip-optimizer",
        "strip-prefix",
        "safetensors",
        "verify",
    ]
    assert "bit-identical" in report["steps"][-1]["verified"]
    sizes = {v["name"]: v["size_bytes"] for v in report["variants"]}
    assert sizes["fixed weights"] < sizes["input"] / 2  # optimizer state was 2/3 of the file
    assert (out_dir / "fix-report.md").read_text().startswith("# mlaudit fix")


def test_safetensors_keeps_tied_tensors_slices_and_metadata(run_cli, tmp_path):
    from mlaudit.fixers.verify import read_state_file

    big = torch.arange(4096, dtype=torch.float32)
    shared = torch.randn(64, 32)
    ckpt = {
        "embed.weight": shared,
        "head.weight": shared,  # tied
        "slice": big[:16],  # a view whose storage is 256x larger
        "copy_a": torch.ones(512),
        "copy_b": torch.ones(512),  # equal bytes, separate storages
        "nan": torch.tensor([float("nan"), -0.0, 1.0]),
        "step": torch.tensor(7),
        "epoch": 3,
    }
    src = tmp_path / "tied.pt"
    torch.save(ckpt, src)
    code, _, err = run_cli("fix", src, "--apply", "dedupe,safetensors", "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    got = read_state_file(tmp_path / "o" / "tied.safetensors")
    for name in ("embed.weight", "head.weight", "slice", "copy_a", "copy_b", "nan", "step"):
        want = ckpt[name]
        assert got[name].dtype == want.dtype and got[name].shape == want.shape
        assert torch.equal(
            got[name].reshape(-1).view(torch.uint8), want.contiguous().reshape(-1).view(torch.uint8)
        )
    from safetensors import safe_open

    with safe_open(str(tmp_path / "o" / "tied.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        stored = set(fh.keys())
    assert json.loads(meta["mlaudit.metadata"]) == {"epoch": 3}
    # default: a plain load_file sees every key of the checkpoint (tied/duplicate ones as copies)
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "o" / "tied.safetensors"))) == set(ckpt) - {"epoch"}
    tensor_bytes = sum(t.numel() * t.element_size() for t in ckpt.values() if isinstance(t, torch.Tensor))
    # the slice was compacted (its 16 kB storage written whole would exceed this)
    assert (tmp_path / "o" / "tied.safetensors").stat().st_size < tensor_bytes + 4096
    # aliases=metadata: stored once, the dropped names listed in the metadata
    code, _, err = run_cli(
        "fix", src, "--apply", "dedupe,safetensors:aliases=metadata", "--out", tmp_path / "m", *FAST
    )
    assert code == 0, err
    with safe_open(str(tmp_path / "m" / "tied.safetensors"), framework="pt") as fh:
        stored = set(fh.keys())
        aliases = json.loads(fh.metadata()["mlaudit.aliases"])
    assert len(stored) == 5 and set(aliases) == {"head.weight", "copy_b"}
    assert set(read_state_file(tmp_path / "m" / "tied.safetensors")) == set(ckpt) - {"epoch"}


def test_dedupe_reports_real_savings_once_per_storage(run_cli, tmp_path):
    """Several small views of one storage: the saving is the storage minus the views, once."""
    base = torch.randn(1000, 256)  # 1.024 MB
    ckpt = {f"part{i}": base[i * 10 : (i + 1) * 10] for i in range(20)}  # 20 views, 204.8 kB kept
    src = tmp_path / "views.pt"
    torch.save(ckpt, src)
    code, _, err = run_cli("fix", src, "--apply", "dedupe", "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    step = next(s for s in json.loads((tmp_path / "o" / "fix-report.json").read_text())["steps"]
                if s["name"] == "dedupe")  # fmt: skip
    assert step["evidence"]["compacted_bytes"] == 1000 * 256 * 4 - 200 * 256 * 4
    assert step["evidence"]["compacted_bytes"] < src.stat().st_size


def test_optimizer_state_under_any_key_is_stripped(run_cli, tmp_path):
    """A `model_state` + `optimizer_state` checkpoint (the layout of a real speaker encoder):
    planned without --apply, and the fixed file holds exactly the model tensors."""
    model = torch.nn.LSTM(8, 16, num_layers=2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(3, 2, 8))[0].sum().backward()
    opt.step()
    src = tmp_path / "encoder.pt"
    torch.save({"step": 5, "model_state": model.state_dict(), "optimizer_state": opt.state_dict()}, src)
    code, out, err = run_cli("fix", src, "--dry-run")
    assert code == 0 and "strip-optimizer" in out and "optimizer_state" in out, out + err
    code, _, err = run_cli("fix", src, "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    from safetensors.torch import load_file

    got = load_file(str(tmp_path / "o" / "encoder.safetensors"))
    assert set(got) == set(model.state_dict())
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def test_dry_run_prints_the_plan_and_writes_nothing(run_cli, tmp_path):
    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    before = tree(tmp_path)
    code, out, _ = run_cli(
        "fix", tmp_path / "mlp.pt", "--dry-run", "--apply", "strip-optimizer,cast-bf16,safetensors"
    )
    assert code == 0
    assert "1. strip-optimizer [safe]" in out and "cast-bf16 [unsafe]" in out and "safetensors [safe]" in out
    assert tree(tmp_path) == before


def test_refuses_to_overwrite_without_force(run_cli, tmp_path):
    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", "--out", out_dir, *FAST)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    assert (out_dir / "keep.txt").read_text() == "mine"
    # --force replaces only what an earlier mlaudit fix wrote (issue 11): never the user's folder
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", "--out", out_dir, "--force", *FAST)
    assert code == 2 and "no mlaudit marker" in err and len(err.strip().splitlines()) == 1
    assert (out_dir / "keep.txt").read_text() == "mine"
    fixed = tmp_path / "fixed"
    assert run_cli("fix", tmp_path / "mlp.pt", "--out", fixed, *FAST)[0] == 0
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", "--out", fixed, "--force", *FAST)
    assert code == 0, err
    assert (fixed / "mlp.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_output_never_replaces_the_input_directory(run_cli, tmp_path):
    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", "--out", tmp_path, "--force", *FAST)
    assert code == 2 and "input" in err
    assert (tmp_path / "mlp.pt").is_file()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    code, _, err = run_cli("fix", bad)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("mlaudit: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


def test_missing_input_and_unknown_fix_exit_2(run_cli, tmp_path):
    assert run_cli("fix", tmp_path / "nope.pt")[0] == 2
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "shrink-ray", "--dry-run")
    assert code == 2 and "unknown fix" in err


def test_model_fix_without_architecture_is_refused(run_cli):
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "int8", "--dry-run")
    assert code == 2 and "architecture" in err


def test_fp16_overflow_fails_the_budget(run_cli, tmp_path):
    src = tmp_path / "hot.pt"
    torch.save({"w": torch.tensor([1.0, 1e5])}, src)
    code, _, err = run_cli("fix", src, "--apply", "cast-fp16", *FAST)
    assert code == 1 and "fp16 overflow" in err and "exceeds 65504 by" in err
    assert not (tmp_path / "hot-fixed").exists()


def test_interrupted_run_leaves_no_partial_artifact(run_cli, tmp_path, monkeypatch):
    from mlaudit.fixers import FIXERS, all_fixers

    all_fixers()
    spec = FIXERS["safetensors"]

    def boom(state, config):
        spec.handler(state, config)  # the artifact is half-way there...
        raise KeyboardInterrupt  # ...when the user hits Ctrl-C

    monkeypatch.setitem(FIXERS, "safetensors", type(spec)(**{**spec.__dict__, "handler": boom}))
    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", *FAST)
    assert code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.pt"]  # no output dir, no temp dir


def test_cast_bf16_is_unsafe_and_measured_against_fp32(run_cli, tmp_path):
    from fixhelp import model_args

    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    code, _, err = run_cli(
        "fix", tmp_path / "mlp.pt", "--apply", "strip-optimizer,cast-bf16,safetensors", *model_args("mlp")
    )
    assert code == 0, err
    report = json.loads((tmp_path / "mlp-fixed" / "fix-report.json").read_text())
    rows = {v["name"]: v for v in report["variants"]}
    bf16 = rows["pytorch (bfloat16 weights)"]
    assert 0 < bf16["fidelity"]["max_abs_err"] and bf16["fidelity"]["mean_cosine"] >= 0.99
    assert rows["fixed weights"]["size_bytes"] < 0.6 * 4 * rows["input"]["params"]
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(tmp_path / "mlp-fixed" / "mlp.safetensors")).values()} == {
        torch.bfloat16
    }


def test_clean_safetensors_has_nothing_to_fix_and_unsafe_needs_consent(run_cli, tmp_path):
    from safetensors.torch import save_file

    src = tmp_path / "clean.safetensors"
    save_file({"fc.weight": torch.ones(4, 4)}, str(src))
    code, out, _ = run_cli("fix", src)
    assert code == 0 and "nothing to fix" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean.safetensors"]
    code, out, _ = run_cli("fix", src, "--unsafe-fixes", "--dry-run")
    assert code == 0 and "cast-bf16 [unsafe]" in out  # no architecture: only the weight cast is on offer


def test_lightning_checkpoint_gets_its_optimizer_states_stripped(run_cli, tmp_path):
    # Lightning saves `optimizer_states` / `lr_schedulers` lists (not `optimizer`): the default
    # plan used to convert them, and the callbacks' +inf scores, into the safetensors file.
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    src = tmp_path / "last.ckpt"
    torch.save(
        {
            "epoch": 1,
            "global_step": 1,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
            "callbacks": {"ModelCheckpoint{}": {"kth_value": torch.tensor(float("inf"))}},
            "optimizer_states": [opt.state_dict()],
            "lr_schedulers": [sched.state_dict()],
            "hyper_parameters": {"lr": 1e-3},
        },
        src,
    )
    code, out, err = run_cli("fix", src, *FAST)
    assert code == 0, err
    from safetensors.torch import load_file

    fixed = load_file(str(tmp_path / "last-fixed" / "last.safetensors"))
    assert sorted(fixed) == ["model.bias", "model.weight"]
    assert torch.equal(fixed["model.weight"], net.weight.detach())


def test_fix_leaves_global_state_as_it_found_it(run_cli, tmp_path):
    import logging

    import torch

    root, threads = logging.getLogger(), torch.get_num_threads()
    root_level, onnx_level = root.level, logging.getLogger("torch.onnx").level
    shutil.copyfile(TRAINED / "mlp.pt", tmp_path / "mlp.pt")
    code, _, err = run_cli("fix", tmp_path / "mlp.pt", "--apply", "strip-optimizer,safetensors",
                           "--threads", str(threads + 1), "--out", tmp_path / "o")
    assert code == 0, err
    assert torch.get_num_threads() == threads
    assert (root.level, logging.getLogger("torch.onnx").level) == (root_level, onnx_level)


def test_logger_level_is_restored_after_the_block():
    import logging

    from mlaudit.fixers.base import logger_level

    root = logging.getLogger()
    before = root.level
    with logger_level(None, logging.CRITICAL):
        assert root.level == logging.CRITICAL
    assert root.level == before
