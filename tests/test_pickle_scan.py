"""The static pickle scanner against a seeded corpus (fixtures/gen/attacks.py) built per run:
every hostile file is flagged, nothing is executed (a canary file never appears), no benign
file gets an error, every malformed file is a one-line exit-2 error."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.gen.attacks import _Reduce, _touch_cmd, build_corpus, malicious
from mlaudit.inputs import InputError
from mlaudit.inputs.checkpoint import load_object, read_checkpoint, require_safe_torch
from mlaudit.inputs.checkpoint import pickle_scan as ps


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    canary = root / "CANARY"
    groups = build_corpus(root, canary)
    yield root, canary, groups
    assert not canary.exists(), "a payload ran: the canary file was created"


def _scan_json(run_cli, target: Path, tmp: Path, *args: str) -> tuple[int, list[dict]]:
    out = tmp / "report.json"
    code, _, err = run_cli("scan", target, "--isolated", "--format", "json", "--output", out, *args)
    assert code in (0, 1), err
    return code, json.loads(out.read_text())["findings"]


def test_every_malicious_file_is_flagged_and_nothing_runs(corpus, run_cli, tmp_path):
    root, canary, groups = corpus
    assert len(groups["malicious"]) >= 30
    code, findings = _scan_json(run_cli, root / "malicious", tmp_path, "--select", "MLS,MLA")
    assert code == 1
    flagged = {
        f["location"]["path"].split("/")[-1]
        for f in findings
        if f["severity"] == "error" and f["code"] in ("MLS001", "MLS002")
    }
    names = {p.name for p in groups["malicious"]}
    assert names - flagged == set()
    assert not canary.exists()


def test_each_malicious_file_named_directly_fails_the_gate(corpus, run_cli, tmp_path):
    _root, canary, groups = corpus
    for path in groups["malicious"]:
        code, findings = _scan_json(run_cli, path, tmp_path, "--select", "MLS001,MLS002")
        assert code == 1, path.name
        assert any(f["severity"] == "error" for f in findings), path.name
    assert not canary.exists()


@pytest.mark.parametrize("protocol", range(6))
def test_every_protocol_is_flagged_with_the_exact_global(tmp_path, protocol):
    data = pickle.dumps(_Reduce(__import__("os").system, (_touch_cmd(tmp_path / "c"),)), protocol=protocol)
    result = ps.scan_bytes(data)
    assert [(i.kind, i.target) for i in result.issues] == [("dangerous", "posix.system")]


def test_memo_built_and_computed_names_are_flagged(tmp_path):
    from fixtures.gen.attacks import hand_pickles

    pickles = hand_pickles(tmp_path / "c")
    memo = ps.scan_bytes(pickles["memo_stack_global.pkl"])
    assert ("dangerous", "os.system") in {(i.kind, i.target) for i in memo.issues}
    dynamic = ps.scan_bytes(pickles["dynamic_name.pkl"])
    assert {"dangerous", "dynamic"} <= {i.kind for i in dynamic.issues}
    chain = ps.scan_bytes(pickles["getattr_chain.pkl"])
    assert {i.target for i in chain.issues} >= {"builtins.getattr", "builtins.__import__"}


def test_payloads_are_live_when_unpickled_for_real(tmp_path):
    """Guard against a toothless corpus: in a throwaway subprocess, the plain pickle payload
    really creates its canary (all it can do is `touch` a file in tmp)."""
    canary = tmp_path / "LIVE_CANARY"
    malicious(tmp_path / "m", canary)
    code = f"import pickle; pickle.loads(open({str(tmp_path / 'm' / 'system_p2.pkl')!r}, 'rb').read())"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
    assert canary.exists()


def test_benign_files_get_no_error_finding(corpus, run_cli, tmp_path):
    root, _canary, groups = corpus
    code, findings = _scan_json(run_cli, root / "benign", tmp_path, "--select", "MLS,MLA")
    errors = [(f["code"], f["location"]["path"]) for f in findings if f["severity"] == "error"]
    assert errors == []
    assert len(groups["benign"]) >= 9


def _flatten_loaded(obj, prefix: str, flat: dict) -> dict:
    import torch

    if isinstance(obj, torch.Tensor):
        flat[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten_loaded(v, f"{prefix}.{k}" if prefix else str(k), flat)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten_loaded(v, f"{prefix}.{i}" if prefix else str(i), flat)
    return flat


def test_benign_static_metadata_matches_what_torch_loads(corpus):
    """Names, shapes and dtypes from the static pass equal those of the loaded tensors."""
    _root, _canary, groups = corpus
    for path in groups["benign"]:
        if path.suffix not in (".pt", ".pth", ".ckpt"):
            continue
        info = read_checkpoint(path, path.name)
        assert info.safe_to_load, path.name
        loaded = load_object(info)  # torch.load(weights_only=True), numpy scalars allowed explicitly
        flat = _flatten_loaded(loaded, "", {})
        static = {t.name: (t.shape, t.dtype) for t in info.tensors}
        real = {n: (tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in flat.items()}
        assert static == real, path.name


def test_allowlist_is_exactly_what_real_torch_files_use(corpus, tmp_path):
    """REAL_FILE_GLOBALS is not a guess: real torch.save files (zip + legacy) use exactly it."""
    from fixtures.gen.attacks import allowlist_evidence

    _root, _canary, groups = corpus
    used: set[str] = set()
    for path in groups["benign"] + allowlist_evidence(tmp_path / "evidence"):
        info = read_checkpoint(path, path.name)
        assert info.error_issues == (), path.name
        used |= set(info.globals_used)
    real = {f"{m}.{n}" for m, n in ps.REAL_FILE_GLOBALS}
    # torch.dtype constants are named per dtype (torch.uint16, torch.float8_e4m3fn, torch.float16)
    dtype_consts = {g for g in used if g.startswith("torch.") and g.split(".")[1] in ps.TORCH_DTYPES}
    assert used - dtype_consts == real


def test_metadata_globals_are_lower_severity(tmp_path):
    import argparse
    import pathlib

    import torch

    torch.save(
        {"w": torch.zeros(2), "args": argparse.Namespace(lr=0.1), "p": pathlib.Path("x")}, tmp_path / "m.pt"
    )
    info = read_checkpoint(tmp_path / "m.pt", "m.pt")
    assert {i.kind for i in info.issues} == {"metadata"}
    assert info.safe_to_load
    obj = load_object(info)  # weights_only=True with the benign classes allowed explicitly
    assert obj["args"].lr == 0.1


def test_flagged_files_are_never_loaded(corpus):
    _root, canary, groups = corpus
    path = next(p for p in groups["malicious"] if p.name == "state_dict_payload.pt")
    info = read_checkpoint(path, path.name)
    assert not info.safe_to_load
    with pytest.raises(InputError, match="posix.system"):
        load_object(info)
    assert not canary.exists()


def test_old_torch_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(InputError, match="2.6.0"):
        require_safe_torch("model.pt")


def test_malformed_files_exit_2_with_one_line(corpus, run_cli):
    _root, _canary, groups = corpus
    assert len(groups["malformed"]) >= 10
    for path in groups["malformed"]:
        code, out, err = run_cli("scan", path, "--isolated")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, (path.name, out, err)
        assert len(lines) == 1 and path.name in lines[0], (path.name, err)
        assert "Traceback" not in err


def test_malformed_files_in_a_directory_are_inconclusive_never_clean(corpus, run_cli, tmp_path):
    root, _canary, groups = corpus
    code, findings = _scan_json(run_cli, root / "malformed", tmp_path, "--select", "MLA002")
    assert code == 1
    flagged = {f["location"]["path"].split("/")[-1] for f in findings if f["code"] == "MLA002"}
    assert flagged == {p.name for p in groups["malformed"]}


def test_scanner_errors_are_bounded_on_huge_length_fields():
    # a BINBYTES8 claiming 10 GB: reported as malformed, no allocation of the claimed size
    data = b"\x80\x04\x8e" + (10 * 1024**3).to_bytes(8, "little") + b"abc."
    with pytest.raises(ps.PickleScanError, match="bytes8"):
        ps.scan_bytes(data)
