"""Plugins end to end: the example package in tests/plugin_example (installed by `make setup`)
adds ACME001 with its own YAML, the fixer acme-sort-keys and the output format acme-csv."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mlaudit import catalog, plugins
from mlaudit.model import RegistryError
from mlaudit.plugins import RulePack

pytestmark = pytest.mark.skipif(
    not any(p.prefix == "ACME" for p in plugins.rule_packs()),
    reason="the example plugin is not installed (run `make setup`)",
)

MARKED = "# Model\n\nACME-CONFIDENTIAL: internal numbers\n"


def _project(tmp_path, readme: str):
    (tmp_path / "README.md").write_text(readme)
    return tmp_path


def test_plugin_rule_fires_and_passes(run_cli, tmp_path):
    (tmp_path / "fire").mkdir()
    fire = _project(tmp_path / "fire", MARKED)
    code, out, _ = run_cli("scan", fire, "--isolated", "--select", "ACME", "--format", "json")
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert (finding["code"], finding["location"]["line"]) == ("ACME001", 3)
    (tmp_path / "pass").mkdir()
    clean = _project(tmp_path / "pass", "# Model\n\nPublic numbers only.\n")
    code, out, _ = run_cli("scan", clean, "--isolated", "--select", "ACME", "--format", "json")
    assert code == 0 and json.loads(out)["findings"] == []


def test_plugin_params_come_from_its_yaml_and_settings(run_cli, tmp_path):
    _project(tmp_path, "# Model\n\nSECRET-ISH\n")
    (tmp_path / "pyproject.toml").write_text('[tool.mlaudit.params.ACME001]\nmarker = "SECRET-ISH"\n')
    code, out, err = run_cli("scan", ".", "--select", "ACME001", "--format", "json", cwd=tmp_path)
    assert code == 1, err
    assert [f["code"] for f in json.loads(out)["findings"]] == ["ACME001"]


def test_a_full_scan_runs_the_plugin_rule(run_cli, tmp_path):
    _project(tmp_path, MARKED)
    code, out, _ = run_cli("scan", tmp_path, "--isolated", "--format", "json")
    doc = json.loads(out)
    assert "ACME001" in doc["rules_run"]
    assert "ACME001" in {f["code"] for f in doc["findings"]}


def test_rule_command_shows_the_plugin_doc(run_cli):
    code, out, _ = run_cli("rule", "ACME001")
    assert code == 0
    assert "confidential-marker-in-docs" in out and "ACME house rules (example plugin)" in out
    assert "ACME-CONFIDENTIAL" in out  # the param default, from the plugin's YAML


def test_sarif_carries_the_plugin_rule_descriptor(run_cli, tmp_path):
    _project(tmp_path, MARKED)
    sarif = tmp_path / "out.sarif"
    run_cli("scan", tmp_path, "--isolated", "--select", "ACME", "--output", f"sarif={sarif}")
    run = json.loads(sarif.read_text())["runs"][0]
    [rule] = [r for r in run["tool"]["driver"]["rules"] if r["id"] == "ACME001"]
    assert rule["name"] == "confidential-marker-in-docs"
    assert rule["properties"]["tags"] == ["ACME", "ACME house rules (example plugin)"]
    assert [r["ruleId"] for r in run["results"]] == ["ACME001"]


def test_plugin_output_format(run_cli, tmp_path):
    _project(tmp_path, MARKED)
    code, out, _ = run_cli("scan", ".", "--isolated", "--select", "ACME", "--format", "acme-csv",
                           cwd=tmp_path)
    assert code == 1
    assert out.splitlines() == [
        "code,severity,path,line,message",
        "ACME001,error,README.md,3,documentation carries the marker 'ACME-CONFIDENTIAL'",
    ]


def test_plugin_fixer_runs_and_is_verified(run_cli, tmp_path):
    from safetensors.torch import load_file

    torch.save({"z.weight": torch.randn(3, 2), "a.bias": torch.randn(3)}, tmp_path / "m.pt")
    code, out, err = run_cli("fix", tmp_path / "m.pt", "--apply", "acme-sort-keys,safetensors",
                             "--out", tmp_path / "out")
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "fix-report.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["acme-sort-keys"]["status"] == "applied"
    assert "bit" in steps["verify"]["verified"]  # safe: checked bit-exact against the input
    fixed = load_file(next((tmp_path / "out").glob("*.safetensors")))
    assert set(fixed) == {"z.weight", "a.bias"}


def test_prefix_collisions_are_refused(tmp_path):
    def pack(prefix: str, code: str) -> RulePack:
        return RulePack(prefix, "x", tmp_path, {"acme_x.checks": (code,)}, origin=f"dist-{prefix}")

    with pytest.raises(RegistryError, match="not starting with 'ML'"):
        plugins._check_pack(pack("MLZ", "MLZ001"), [])
    with pytest.raises(RegistryError, match="overlapping code prefixes 'ACME' and 'ACMEX'"):
        plugins._check_pack(pack("ACMEX", "ACMEX001"), [pack("ACME", "ACME001")])
    with pytest.raises(RegistryError, match="does not carry its prefix"):
        plugins._check_pack(pack("ZED", "ACME002"), [])


def test_fixer_and_format_name_collisions_are_refused(monkeypatch):
    def fake(*entries):
        return lambda group: [SimpleNamespace(name=n, value=v, dist=SimpleNamespace(name=d))
                              for n, v, d in entries]

    monkeypatch.setattr(plugins, "_entry_points", fake(("safetensors", "x.fix", "dist-a")))
    with pytest.raises(RegistryError, match="fixer 'safetensors' is built into mlaudit"):
        plugins.fixer_modules({"safetensors": "mlaudit.fixers.safetensors_fix"})
    two = fake(("csv", "a.fmt", "dist-a"), ("csv", "b.fmt", "dist-b"))
    monkeypatch.setattr(plugins, "_entry_points", two)
    with pytest.raises(RegistryError, match="both add output format 'csv'"):
        plugins.format_modules({"text": "mlaudit.report.text"})


def test_plugins_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("MLAUDIT_NO_PLUGINS", "1")
    plugins.rule_packs.cache_clear()
    catalog.load_catalog.cache_clear()
    try:
        assert "ACME001" not in catalog.load_catalog()
    finally:
        monkeypatch.delenv("MLAUDIT_NO_PLUGINS")
        plugins.rule_packs.cache_clear()
        catalog.load_catalog.cache_clear()
    assert "ACME001" in catalog.load_catalog()
