"""The core install: a scan imports none of torch, onnx, onnxruntime; with those packages
absent (blocked in a child process) scan results equal the full install's, and asking for
what needs them (`fix`, `--run-model`) gives one line naming the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlaudit.catalog import load_catalog
from mlaudit.checks.registry import implementations
from mlaudit.extras import FIX_INSTALL, FIX_PACKAGES
from tests.casekit import ROOT

BUILD = ROOT / "fixtures" / "build"
HEAVY = ("torch", "onnx", "onnxruntime")

# Runs `mlaudit ARGS` in this interpreter; BLOCK lists top-level packages made unimportable
# (as in an install without them); prints which heavy packages got imported, on stderr.
RUNNER = r"""
import importlib.abc, json, sys
BLOCK, HEAVY = json.loads(sys.argv[1]), json.loads(sys.argv[2])

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from mlaudit.cli import main
try:
    code = main(sys.argv[3:])
finally:
    print("IMPORTED=" + ",".join(m for m in HEAVY if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _mlaudit(*args: str, block: tuple[str, ...] = ()) -> tuple[int, str, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(list(block)), json.dumps(HEAVY),
                           *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    lines = proc.stderr.splitlines()
    imported = next((x for x in reversed(lines) if x.startswith("IMPORTED=")), "IMPORTED=?")
    err = "\n".join(x for x in lines if not x.startswith("IMPORTED="))
    return proc.returncode, proc.stdout, err, [m for m in imported[9:].split(",") if m]


@pytest.fixture(scope="module")
def format_files(tmp_path_factory) -> dict[str, Path]:
    """One small file per format (keyed by mlaudit's format name): torch zip, legacy,
    safetensors, ONNX, TorchScript, torch.export (.pt2)."""
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("formats")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    sd = model.state_dict()
    files = {"torch-zip": d / "zip.pt", "torch-legacy": d / "legacy.pt", "safetensors": d / "w.safetensors",
             "torchscript": d / "script.pt", "onnx": next(BUILD.rglob("MLS008/pass/model.onnx"), None)}
    torch.save(sd, files["torch-zip"])
    torch.save(sd, files["torch-legacy"], _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(files["safetensors"]))
    torch.jit.script(model).save(str(files["torchscript"]))
    try:
        torch.export.save(torch.export.export(model, (torch.randn(1, 8),)), str(d / "m.pt2"))
        files["torch-export"] = d / "m.pt2"
    except Exception:  # torch.export unavailable for this build: the other formats still count
        pass
    return {k: v for k, v in files.items() if v is not None}


def test_scanning_each_format_imports_no_heavy_package(format_files):
    assert {"torch-zip", "torch-legacy", "safetensors", "onnx", "torchscript"} <= set(format_files)
    for fmt, path in format_files.items():
        code, out, err, imported = _mlaudit("scan", path, "--isolated", "--format", "json")
        assert code in (0, 1), (fmt, err)
        report = json.loads(out)
        assert any(a["kind"] == "checkpoint" and a["details"]["format"] == fmt
                   for a in report["artifacts"]), (fmt, report["artifacts"])
        if fmt not in ("torchscript", "torch-export"):  # never loaded: no statistics to compute
            assert any(a["kind"] == "checkpoint-stats" for a in report["artifacts"]), fmt
        assert imported == [], (fmt, imported)


def _findings(out: str) -> list[tuple]:
    return sorted((f["code"], f["location"]["path"], f["location"].get("pointer") or "", f["message"])
                  for f in json.loads(out)["findings"])


@pytest.mark.parametrize("target", ["sample_project", "corpus", "cases"])
def test_results_without_torch_and_onnx_equal_the_full_install(target):
    path = BUILD / target
    if not path.is_dir():
        pytest.skip(f"{path} not generated")
    args = ("scan", path, "--isolated", "--format", "json", "--exit-zero")
    code_full, out_full, err_full, _ = _mlaudit(*args)
    code_core, out_core, err_core, imported = _mlaudit(*args, block=FIX_PACKAGES)
    assert code_full == 0 and code_core == 0, (err_full, err_core)
    assert imported == []
    full, core = _findings(out_full), _findings(out_core)
    # Files holding quantized or sparse tensors need torch for their statistics: without it
    # they are inconclusive (MLA002 naming the extra) and their statistics findings are absent.
    needs = {f[1] for f in core if f[0] == "MLA002" and FIX_INSTALL in f[3]}
    assert not any(f[1] in needs for f in full if f[0] == "MLA002")
    same_full = [f for f in full if f[1] not in needs]
    same_core = [f for f in core if f[1] not in needs]
    assert same_core == same_full
    if target == "cases":
        assert needs, "the quantized/sparse cases should need torch"
    for path_needing in needs:
        assert {f[0] for f in full if f[1] == path_needing} - {f[0] for f in core if f[1] == path_needing} \
            <= {c for c in load_catalog() if c.startswith(("MLC", "MLG"))}


def test_fix_without_the_extra_is_one_line(tmp_path):
    code, out, err, _ = _mlaudit("fix", tmp_path / "x.pt", block=("torch", "onnx"))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "torch, onnx" in err and FIX_INSTALL in err


def test_run_model_without_torch_is_one_line(tmp_path):
    code, out, err, _ = _mlaudit("scan", tmp_path, "--run-model", block=("torch",))
    assert code == 2 and err.strip().count("\n") == 0 and FIX_INSTALL in err


def test_rules_that_run_the_model_declare_torch():
    catalog = load_catalog()
    impls = implementations(list(catalog))
    runs_model = {c for c, i in impls.items() if i.needs == "model_probe"}
    declares = {c for c, m in catalog.items() if "torch" in m.requires}
    assert runs_model and declares == runs_model
    for code in declares:
        from mlaudit.docs import rule_markdown

        assert FIX_INSTALL in rule_markdown(catalog[code])
