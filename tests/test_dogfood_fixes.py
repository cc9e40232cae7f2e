"""Defects found by scanning mlaudit's own repository, pinned by tests."""

from __future__ import annotations

from mlaudit.checks import registry
from mlaudit.checks.registry import RuleImpl
from mlaudit.engine import scan
from mlaudit.inline_suppressions import parse_suppressions
from mlaudit.inputs.session import ScanOptions
from mlaudit.model import Location


def test_suppression_text_inside_python_strings_is_not_a_comment():
    text = (
        'DOC = "x = 1  # mlaudit: ignore[MLT005] in a string"\n'
        "y = 2  # mlaudit: ignore[MLQ003] real comment\n"
        '"""\n# mlaudit: ignore[MLQ004] inside a docstring\n"""\n'
    )
    found = [(s.line, s.codes) for s in parse_suppressions("a.py", text)]
    assert found == [(2, ("MLQ003",))]


def test_suppression_text_inside_yaml_block_scalars_and_quotes_is_not_a_comment():
    text = (
        "example: |\n"
        "  lr: 3.0  # mlaudit: ignore[MLT005] documentation, not a comment\n"
        "title: 'a # mlaudit: ignore[MLT001] in quotes'\n"
        "lr: 3.0  # mlaudit: ignore[MLT005] real one\n"
        "# mlaudit: ignore[MLT010] whole-line comment\n"
        "seed: 1\n"
    )
    found = [(s.line, s.codes) for s in parse_suppressions("c.yaml", text)]
    assert found == [(4, ("MLT005",)), (5, ("MLT010",))]


def test_exclude_drops_findings_from_every_input(tmp_path, monkeypatch):
    # Git-based rules read the index, not the walk: exclusion must still hold for them.
    registry.implementations()

    def from_index(target, ctx):
        yield ctx.finding("tracked in git", Location("vendor/model.pt"))
        yield ctx.finding("tracked in git", Location("models/model.pt"))

    monkeypatch.setitem(registry._IMPLS, "MLA001", RuleImpl("MLA001", "project", from_index))
    report = scan([tmp_path], ScanOptions(codes=("MLA001",), exclude=("vendor",)))
    assert [f.location.path for f in report.findings] == ["models/model.pt"]


def test_repeated_dependency_declarations_are_one_finding_at_the_first(run_cli, tmp_path):
    # one finding per fact: the package is unpinned in this project folder (issue 18)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["torch>=2"]\n\n'
        '[project.optional-dependencies]\ndev = [\n  "torch>=2",\n]\n'
    )
    code, out, _ = run_cli("scan", tmp_path, "--isolated", "--select", "MLR101", "--format", "json")
    import json

    lines = sorted(f["location"]["line"] for f in json.loads(out)["findings"])
    assert lines == [3]
