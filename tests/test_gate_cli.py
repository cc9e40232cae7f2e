"""The gate's CLI surface: several outputs per run, baselines with counts, statistics,
per-file-ignores with reasons, and one-line errors for bad gate arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlaudit import baseline as bl
from mlaudit.model import Finding, Location, Severity, fingerprint
from tests.test_formats import _sarif_schema


def _bad(directory: Path, name: str = "broken.pt") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x80\x04 truncated pickle " + name.encode())
    return path


def _finding(path: str, message: str = "m") -> Finding:
    return Finding("MLA002", "inconclusive-input", Severity.ERROR, message, Location(path),
                   fingerprint=fingerprint("MLA002", path, None))


def test_baseline_suppresses_up_to_the_recorded_count():
    entries = bl.from_findings([_finding("a.pt", "one")])
    applied = bl.apply([_finding("a.pt", "one"), _finding("a.pt", "two"), _finding("b.pt")], entries)
    assert [f.baselined for f in applied.findings] == [True, False, False]
    assert applied.stale == () and applied.matched == 1
    # Recorded 2, found 1: stale with matched=1; pruning lowers the count instead of dropping.
    twice = bl.from_findings([_finding("a.pt"), _finding("a.pt")])
    assert twice[0].count == 2
    applied = bl.apply([_finding("a.pt")], twice)
    [stale] = applied.stale
    assert (stale.matched, stale.entry.count) == (1, 2)
    assert [e.count for e in bl.pruned(twice, applied.stale)] == [1]
    assert bl.pruned(twice, bl.apply([], twice).stale) == []


def test_baseline_round_trips_and_rejects_bad_files(tmp_path):
    entries = bl.from_findings([_finding("a.pt"), _finding("b.pt"), _finding("b.pt")])
    path = tmp_path / "b.json"
    bl.write(path, entries)
    assert bl.read(path) == entries
    for text, needle in [("{", "not a readable baseline"), ("[]", "no 'entries' list"),
                         ('{"version": 9, "entries": []}', "unsupported baseline version"),
                         ('{"version": 1, "entries": [{"code": "X"}]}', "entry 0 is malformed")]:
        path.write_text(text)
        with pytest.raises(bl.BaselineError, match=needle):
            bl.read(path)


def test_several_outputs_are_all_written_before_the_exit_code(run_cli, tmp_path):
    _bad(tmp_path / "proj")
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        "scan", tmp_path / "proj", "--isolated", "--select", "MLA",
        "--output", f"sarif={out}/r.sarif", "--output", f"junit={out}/r.xml",
        "--output", f"gitlab={out}/gl.json", "--output", f"markdown={out}/summary.md",
        "--output", f"github={out}/annotations.txt", "--output", f"json={out}/r.json",
    )
    assert code == 1
    assert "MLA002" in stdout and "Report written to" in stdout  # text report still on stdout
    assert json.loads((out / "r.sarif").read_text())["runs"][0]["results"][0]["ruleId"] == "MLA002"
    assert ET.fromstring((out / "r.xml").read_bytes()).get("failures") == "1"
    assert json.loads((out / "gl.json").read_text())[0]["severity"] == "major"
    assert "| MLA002 | error |" in (out / "summary.md").read_text()
    assert (out / "annotations.txt").read_text().startswith("::error file=")
    assert json.loads((out / "r.json").read_text())["summary"]["counts"]["error"] == 1
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_plain_output_path_keeps_working_with_format(run_cli, tmp_path):
    _bad(tmp_path)
    code, stdout, _ = run_cli("scan", tmp_path, "--isolated", "--select", "MLA", "--format", "gitlab",
                              "--output", tmp_path / "gl.json")
    assert code == 1 and stdout.startswith("Found 1 error") and "gl.json" in stdout
    assert json.loads((tmp_path / "gl.json").read_text())[0]["check_name"] == "MLA002 inconclusive-input"


def test_format_to_stdout_keeps_stdout_machine_readable(run_cli, tmp_path):
    _bad(tmp_path)
    code, stdout, err = run_cli("scan", tmp_path, "--isolated", "--select", "MLA", "--output", "sarif=-",
                                "--output", f"junit={tmp_path / 'j.xml'}", "--statistics")
    assert code == 1 and json.loads(stdout)["version"] == "2.1.0"
    assert "Report written to" in err and "MLA002" in err  # messages and statistics on stderr


def test_statistics_counts_per_rule(run_cli, tmp_path):
    _bad(tmp_path, "a.pt")
    _bad(tmp_path, "b.pt")
    code, stdout, _ = run_cli("scan", tmp_path, "--isolated", "--select", "MLA", "--statistics", "-q")
    assert code == 1
    assert any(line.split() == ["2", "MLA002", "inconclusive-input"] for line in stdout.splitlines())


def test_write_baseline_then_show_baselined(run_cli, tmp_path):
    proj = tmp_path / "proj"
    _bad(proj)
    base = tmp_path / "base.json"
    code, stdout, _ = run_cli("scan", proj, "--isolated", "--select", "MLA", "--write-baseline", base)
    assert code == 0 and "written to" in stdout and "1 baselined" in stdout
    code, stdout, _ = run_cli("scan", proj, "--isolated", "--select", "MLA", "--baseline", base)
    assert code == 0 and "broken.pt" not in stdout.replace("base.json", "")
    code, stdout, _ = run_cli("scan", proj, "--isolated", "--select", "MLA", "--baseline", base,
                              "--show-baselined")
    assert code == 0 and "broken.pt" in stdout and "(baselined)" in stdout
    code, stdout, _ = run_cli("scan", proj, "--isolated", "--select", "MLA", "--baseline", base,
                              "--show-baselined", "--format", "github")
    assert code == 0 and stdout.startswith("::notice file=") and "(baselined)" in stdout


def test_baseline_from_config_and_update(run_cli, tmp_path):
    _bad(tmp_path, "a.pt")
    # Only the meta rules: project-level rules (no README, no tests...) would fire here too.
    (tmp_path / "mlaudit.yaml").write_text("baseline: base.json\nselect: [MLA]\n")
    assert run_cli("scan", ".", "--write-baseline", "base.json", cwd=tmp_path)[0] == 0
    assert run_cli("scan", ".", cwd=tmp_path)[0] == 0  # baseline picked up from the config
    (tmp_path / "a.pt").unlink()
    code, stdout, _ = run_cli("scan", ".", "--update-baseline", cwd=tmp_path)
    assert code == 0 and "MLA005" in stdout and "pruned" in stdout
    assert json.loads((tmp_path / "base.json").read_text())["entries"] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--output", "xml=out.xml"], "unknown format 'xml'"),
        (["--output", "sarif="], "missing path"),
        (["--output", "sarif=-", "--output", "json=-"], "only one output can go to stdout"),
        (["--update-baseline"], "--update-baseline needs a baseline"),
        (["--baseline", "a.json", "--write-baseline", "b.json"], "exclude each other"),
        (["--baseline", "missing.json"], "baseline file not found"),
        (["--output", "sarif=blocker/out.sarif"], "cannot write report"),
    ],
)
def test_bad_gate_arguments_are_one_line_exit_2(run_cli, tmp_path, args, needle):
    _bad(tmp_path)
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    code, _, err = run_cli("scan", ".", "--isolated", *args, cwd=tmp_path)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_per_file_ignores_with_reasons(run_cli, tmp_path):
    _bad(tmp_path / "models" / "legacy", "old.pt")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.mlaudit]\nrequire-suppression-reason = true\n"
        "[tool.mlaudit.per-file-ignores]\n"
        '"models/legacy/*.pt" = { codes = ["MLA002"], reason = "frozen model, sandbox only" }\n'
    )
    code, stdout, _ = run_cli("scan", ".", cwd=tmp_path)
    assert code == 0 and "1 suppressed" in stdout and "MLA00" not in stdout
    # Audits see through suppressions, and then nothing is "unused".
    code, stdout, _ = run_cli("scan", ".", "--ignore-suppressions", cwd=tmp_path)
    assert code == 1 and "MLA002" in stdout and "MLA004" not in stdout


def test_per_file_ignores_without_required_reason_fails(run_cli, tmp_path):
    _bad(tmp_path / "legacy", "old.pt")
    (tmp_path / "mlaudit.yaml").write_text(
        "require-suppression-reason: true\nper-file-ignores:\n  'legacy/*.pt': [MLA002]\n"
    )
    code, stdout, _ = run_cli("scan", ".", cwd=tmp_path)
    assert code == 1 and "MLA006" in stdout and "mlaudit.yaml" in stdout and "1 suppressed" in stdout


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("{codes: [MLA002], why: x}", "unknown key 'why'"),
        ("{codes: [MLA002], reason: 3}", "reason must be a string"),
        ("{reason: x}", "must be a list of codes or a table"),
        ("[MLZ001]", "unknown rule code"),
    ],
)
def test_bad_per_file_ignore_entries(run_cli, tmp_path, entry, needle):
    (tmp_path / "mlaudit.yaml").write_text(f"per-file-ignores:\n  'a/*.pt': {entry}\n")
    code, _, err = run_cli("scan", ".", cwd=tmp_path)
    assert code == 2 and needle in err and "mlaudit.yaml" in err


def test_real_catalog_sarif_is_schema_valid_with_a_descriptor_per_rule(run_cli, tmp_path):
    schema_path = _sarif_schema()
    if schema_path is None:
        pytest.skip("sarif-schema-2.1.0.json not found in a shared/schemas/ folder above tests/")
    from jsonschema import Draft4Validator

    from mlaudit.catalog import load_catalog

    _bad(tmp_path / "models", "model.pt")
    out = tmp_path / "r.sarif"
    run_cli("scan", ".", "--isolated", "--select", "ALL", "--output", f"sarif={out}", cwd=tmp_path)
    doc = json.loads(out.read_text())
    Draft4Validator(json.loads(schema_path.read_text())).validate(doc)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    stable = {c for c, m in load_catalog().items() if m.status != "preview"}
    assert {r["id"] for r in rules} == stable
    assert all(r["help"]["markdown"] and r["fullDescription"]["text"] for r in rules)
    [result] = [r for r in doc["runs"][0]["results"] if r["ruleId"] == "MLA002"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/model.pt"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_partial_scans_do_not_declare_the_rest_of_the_baseline_stale(run_cli, tmp_path):
    # Fingerprints are relative to the project root: the git work tree (without git, each
    # scanned directory is its own project, so a scan of `a` could not match entries of `.`).
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _bad(tmp_path / "a", "x.pt")
    _bad(tmp_path / "b", "y.pt")
    assert run_cli("scan", ".", "--isolated", "--write-baseline", "base.json", cwd=tmp_path)[0] == 0
    before = (tmp_path / "base.json").read_text()
    (tmp_path / "b" / "notes.txt").write_text("a readable file beside the baselined one\n")
    # Another directory, another rule selection, a single file: b/y.pt's entry is out of scope.
    for args in (["a"], [".", "--select", "MLA001"], ["b/notes.txt"]):
        code, out, _ = run_cli("scan", *args, "--isolated", "--baseline", "base.json",
                               "--update-baseline", cwd=tmp_path)
        assert code == 0 and "MLA005" not in out and "pruned" not in out, (args, out)
    assert (tmp_path / "base.json").read_text() == before
    (tmp_path / "b" / "y.pt").unlink()
    code, out, _ = run_cli("scan", "b", "--isolated", "--baseline", "base.json", cwd=tmp_path)
    assert code == 0 and "MLA005" in out and "b/y.pt" in out
