"""`mlaudit fix` plans from the scan's findings (issue 16, item 1): each finding carries its
fixer and the arguments that locate the problem; the plan groups them by fixer, orders the
fixers by their declared dependencies, and the report lists the findings the fix removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixhelp import FAST

from mlaudit.fixers import FixerSpec, all_fixers, pipeline_order
from mlaudit.model import Finding, FixArgs, Location, RegistryError, Severity

torch = pytest.importorskip("torch")


def _adam_state(model) -> dict:
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(3, model.in_features)).sum().backward()
    opt.step()
    return opt.state_dict()


def test_builtin_pipeline_order_follows_declared_dependencies():
    fixers = all_fixers()
    order = list(fixers)
    assert order[:3] == ["strip-optimizer", "strip-prefix", "dedupe"]
    assert order.index("safetensors") > max(order.index(n) for n, s in fixers.items()
                                            if s.level == "state" and n != "safetensors")
    assert order.index("onnx") < order.index("int8") and order.index("onnx") < order.index("int8-static")
    assert order.index("prune") < order.index("onnx") and order.index("prune") < order.index("cast-bf16")
    for name, spec in fixers.items():  # every declared edge holds
        for first in (*spec.requires, *spec.after):
            assert order.index(first) < order.index(name), (first, name)


def test_a_dependency_cycle_is_a_registry_error():
    def spec(name: str, after: tuple[str, ...]) -> FixerSpec:
        return FixerSpec(name, "safe", "model", "", object, lambda s, c: None, (), after)

    with pytest.raises(RegistryError, match="cycle"):
        pipeline_order({"a": spec("a", ("b",)), "b": spec("b", ("a",))})
    with pytest.raises(RegistryError, match="unknown fixer"):
        pipeline_order({"a": spec("a", ("nope",))})


def test_findings_drive_the_plan_and_the_report_lists_what_was_removed(run_cli, tmp_path):
    """A DDP-prefixed model under `net` with Adam state under a key no list names: MLC004 (found
    by structure), MLC005 and MLS004 plan strip-optimizer, strip-prefix and safetensors, each
    with the finding's arguments; the output, re-scanned, has none of them."""
    net = torch.nn.Linear(6, 4)
    src = tmp_path / "run.pt"
    torch.save({"net": {f"module.{k}": v for k, v in net.state_dict().items()},
                "adam_moments": _adam_state(net), "epoch": 2}, src)
    code, out, err = run_cli("fix", src, "--dry-run")
    assert code == 0, err
    assert "answers MLC004 run.pt (state_key=net; drop=adam_moments)" in out, out
    assert "answers MLC005 run.pt#net.module.weight (prefixes=module.)" in out, out
    assert "answers MLS004" in out
    code, _, err = run_cli("fix", src, "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    from safetensors.torch import load_file

    got = load_file(str(tmp_path / "o" / "run.safetensors"))
    assert set(got) == {"weight", "bias"} and torch.equal(got["weight"], net.weight.detach())
    report = json.loads((tmp_path / "o" / "fix-report.json").read_text())
    plan = {p["name"]: p for p in report["plan"]}
    assert list(plan) == ["strip-optimizer", "strip-prefix", "safetensors"]
    assert plan["strip-optimizer"]["findings"] == ["MLC004 run.pt"]
    removed = {r["code"] for r in report["findings"]["removed"]}
    assert {"MLC004", "MLC005", "MLS004"} <= removed
    assert report["findings"]["introduced"] == [] and report["findings"]["remaining"] == []
    md = (tmp_path / "o" / "fix-report.md").read_text()
    assert "## Findings" in md and f"removed by the fix: {len(report['findings']['removed'])}" in md
    html = (tmp_path / "o" / "fix-report.html").read_text()
    assert 'id="findings-removed"' in html
    assert html.count('data-finding="removed"') == len(report["findings"]["removed"])


def test_model_at_the_top_level_keeps_its_tensors_and_drops_the_flagged_keys(run_cli, tmp_path):
    net = torch.nn.Linear(5, 3)
    src = tmp_path / "flat.pt"
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 5)).sum().backward()
    opt.step()
    torch.save({**{k: v.detach().clone() for k, v in net.state_dict().items()}, "sgd": opt.state_dict()}, src)
    code, out, err = run_cli("fix", src, "--dry-run")
    assert code == 0 and "answers MLC004 flat.pt (state_key=; drop=sgd)" in out, out + err
    code, _, err = run_cli("fix", src, "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "o" / "flat.safetensors"))) == {"weight", "bias"}


def test_explicit_apply_uses_the_findings_arguments_and_runs_only_what_was_named(run_cli, tmp_path):
    net = torch.nn.Linear(4, 2)
    src = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, src)
    code, out, err = run_cli("fix", src, "--apply", "strip-prefix", "--dry-run")
    assert code == 0, err
    assert "1. strip-prefix" in out and "2. " not in out
    assert "requested with --apply; answers MLC005" in out
    code, _, err = run_cli("fix", src, "--apply", "strip-prefix", "--out", tmp_path / "o", *FAST)
    assert code == 0, err
    report = json.loads((tmp_path / "o" / "fix-report.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["strip-prefix", "verify"]
    assert {r["code"] for r in report["findings"]["removed"]} == {"MLC005"}
    assert {r["code"] for r in report["findings"]["remaining"]} == {"MLS004"}  # still a pickle


def test_unsafe_findings_are_notes_without_consent(run_cli, tmp_path):
    """MLC008 (fp32 weights that are bf16-exact) names cast-bf16, an unsafe fix: the default
    plan says so and leaves it out; --unsafe-fixes plans it from the finding."""
    torch.manual_seed(0)
    src = tmp_path / "bf16.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.randn(64, 64).to(torch.bfloat16).float()}, str(src))
    code, out, err = run_cli("fix", src)
    assert code == 0 and "nothing to fix" in out and "MLC008 suggest cast-bf16" in out, out + err
    code, out, err = run_cli("fix", src, "--unsafe-fixes", "--dry-run")
    assert code == 0 and "cast-bf16 [unsafe]" in out and "answers MLC008" in out, out + err


def test_an_error_finding_the_fix_introduced_fails_the_run(tmp_path):
    """The findings gate: whatever the fix wrote, an error-severity finding on the output that
    the input did not have fails the run (exit 1 from the CLI) and nothing is kept."""
    from mlaudit.fix_scan import scan_for_fixes
    from mlaudit.fixers.runner import FixOptions, run_fix

    net = torch.nn.Linear(3, 2)
    src = tmp_path / "m.pt"
    torch.save(net.state_dict(), src)

    def scanner(path: Path) -> list[Finding]:
        found = scan_for_fixes(path)
        if path != src:  # the output: pretend the fix broke something
            where = Location(path.name, pointer="weight")
            found.append(Finding("MLC011", "nan-or-inf-values", Severity.ERROR, "NaN", where,
                                 fix=FixArgs("dedupe", "safe")))
        return found

    opts = FixOptions(checkpoint=src, out=tmp_path / "o", measure_seconds=0.05, threads=1, scanner=scanner)
    outcome = run_fix(opts)
    assert outcome.budget_failure is not None and "MLC011 m.safetensors#weight" in outcome.budget_failure
    assert not (tmp_path / "o").exists()


def test_requirements_are_added_and_conflicts_refused(run_cli, tmp_path):
    from fixhelp import TRAINED

    args = ("--config", TRAINED / "mlp.yaml", "--run-model", "--dry-run")
    code, out, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "int8", *args)
    assert code == 0, err
    assert out.index(". onnx [unsafe]") < out.index(". int8 [unsafe]")
    assert "added onnx: int8 requires it" in out
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "int8,int8-static", *args)
    assert code == 2 and "choose one of int8 and int8-static" in err
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "cast-fp16,cast-bf16", *args)
    assert code == 2 and "choose one of cast-bf16 and cast-fp16" in err


def test_scan_json_carries_each_findings_fix(run_cli, tmp_path):
    src = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in torch.nn.Linear(3, 2).state_dict().items()}, src)
    code, out, _ = run_cli("scan", src, "--select", "MLC005,MLC001", "--format", "json")
    fixes = {f["code"]: f["fix"] for f in json.loads(out)["findings"]}
    want = {"fixer": "strip-prefix", "applicability": "safe", "args": {"prefixes": "module."}}
    assert fixes["MLC005"] == want
