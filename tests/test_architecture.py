"""The layer contract and explicit registration: both must fail loudly when broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlaudit import catalog
from mlaudit.checks import registry
from mlaudit.engine import ENGINE_CODES
from mlaudit.model import RegistryError
from tests.import_contract import ROOT, violations


def test_import_contract_holds():
    assert violations() == []


def _copy_with(tmp_path: Path, rel: str, code: str) -> Path:
    """A copy of the package with `code` appended to module `rel` (the checkout is untouched)."""
    shutil.copytree(ROOT / "mlaudit", tmp_path / "mlaudit")
    target = tmp_path / "mlaudit" / rel
    target.write_text(target.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")
    return tmp_path


def test_contract_fails_when_a_layer_imports_upward(tmp_path):
    # inside a function, as a circle would be dodged: still an upward import
    upward = "def _peek():\n    from mlaudit.engine import scan  # noqa\n"
    root = _copy_with(tmp_path, "inputs/repo.py", upward)
    found = violations(root)
    assert any(p.startswith("mlaudit.inputs.repo:") and "layer inputs imports mlaudit.engine" in p
               for p in found), found


def test_contract_fails_when_report_imports_the_engine(tmp_path):
    root = _copy_with(tmp_path, "report/text.py", "import mlaudit.engine  # noqa")
    assert any("layer report imports mlaudit.engine" in p for p in violations(root))


def test_contract_fails_when_anything_imports_cli(tmp_path):
    root = _copy_with(tmp_path, "engine.py", "from mlaudit import cli  # noqa")
    assert any("layer engine imports mlaudit.cli" in p for p in violations(root))


def test_contract_counts_modules_named_in_registration_tables(tmp_path):
    # lazily imported through importlib: the table entry is the import
    root = _copy_with(tmp_path, "inputs/__init__.py", 'INPUT_KIND_MODULES["bad"] = ("mlaudit.checks.docs",)')
    assert any("layer inputs imports mlaudit.checks.docs" in p for p in violations(root))


def test_contract_fails_on_an_import_circle_within_a_layer(tmp_path):
    # the circle the checkpoint types once had with their readers, dodged inside a function
    root = _copy_with(tmp_path, "inputs/checkpoint/types.py",
                      "def _late():\n    from mlaudit.inputs.checkpoint import read  # noqa\n")
    circles = [p for p in violations(root) if p.startswith("import circle")]
    assert circles and "mlaudit.inputs.checkpoint.types" in circles[0]
    assert "mlaudit.inputs.checkpoint.read" in circles[0]


def test_contract_fails_on_a_module_in_no_layer(tmp_path):
    root = _copy_with(tmp_path, "model.py", "")
    (root / "mlaudit" / "stray.py").write_text("X = 1\n")
    assert "mlaudit.stray: in no layer of the import contract" in violations(root)


def test_registration_tables_match_the_catalog():
    registry.check_table(catalog.load_catalog(), ENGINE_CODES)


@pytest.fixture
def extra_rule_catalog(tmp_path, monkeypatch):
    """The real catalog plus MLC099, a rule with metadata and no implementation."""
    rules = tmp_path / "rules"
    shutil.copytree(catalog.rules_dir(), rules)
    (rules / "zz-extra.yaml").write_text(
        "rules:\n  - code: MLC099\n    name: extra-rule\n    summary: s\n    what: w\n    why: y\n"
    )
    monkeypatch.setattr(catalog, "rules_dir", lambda: rules)
    catalog.load_catalog.cache_clear()
    yield
    monkeypatch.undo()
    catalog.load_catalog.cache_clear()


def test_catalog_rule_without_implementation_stops_the_scan(extra_rule_catalog, run_cli, tmp_path):
    # The silent-rule scenario: metadata for MLC099, no implementation. Before, `--select MLC099`
    # reported "1 rules", found nothing and exited 0.
    project = tmp_path / "project"
    project.mkdir()
    code, out, err = run_cli("scan", str(project), "--isolated", "--select", "MLC099")
    assert code == 2
    assert err.strip().splitlines() == [
        "mlaudit: error: rule MLC099 is in the catalog but no check implements it "
        "(mlaudit.checks.registry.RULE_MODULES)"
    ]


def test_rule_registered_through_a_constant_outside_the_table_fails_at_import():
    # `@rule(SOME_CONSTANT)` used to slip past a regex over the source; now registration
    # checks the explicit table, whatever expression produced the code.
    some_constant = "MLC099"

    def check(target, ctx):
        return []

    check.__module__ = "mlaudit.checks.weight_health"
    with pytest.raises(RegistryError, match="MLC099 is implemented in mlaudit.checks.weight_health"):
        registry.rule(some_constant, needs="checkpoint_stats")(check)


def test_table_code_the_module_does_not_register_fails(monkeypatch):
    monkeypatch.setitem(registry.code_modules(), "MLC099", "mlaudit.checks.weight_health")
    with pytest.raises(RegistryError, match="does not register rule MLC099"):
        registry.implementations(["MLC099"])


def test_table_code_without_catalog_entry_fails(monkeypatch):
    monkeypatch.setitem(registry.code_modules(), "MLC099", "mlaudit.checks.weight_health")
    with pytest.raises(RegistryError, match="MLC099 is implemented in .* but has no entry in the rule"):
        registry.check_table(catalog.load_catalog(), ENGINE_CODES)
