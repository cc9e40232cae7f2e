"""CI output formats on a hand-built report: golden files, SARIF schema + GitHub specifics,
annotation escaping, GitLab Code Quality fields, JUnit well-formedness.

Regenerate the golden files after an intended change with `MLAUDIT_UPDATE_GOLDEN=1 pytest
tests/test_formats.py` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mlaudit.model import Finding, Location, Report, RuleMeta, Severity, fingerprint
from mlaudit.report import FORMATS, render
from mlaudit.report.github import annotation, escape_data, escape_property
from mlaudit.report.gitlab import issues
from mlaudit.report.junit import junit_tree
from mlaudit.report.markdown import cell
from mlaudit.report.sarif import FINGERPRINT_KEY, SRCROOT, sarif_dict

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("MLAUDIT_UPDATE_GOLDEN") == "1"
SARIF_SCHEMA_NAME = "sarif-schema-2.1.0.json"


def _sarif_schema() -> Path | None:
    # CI has ../shared beside the clone (parents[2]); a worktree sits one level deeper.
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "schemas" / SARIF_SCHEMA_NAME
        if candidate.is_file():
            return candidate
    return None


def _meta(code: str, name: str, severity: Severity) -> RuleMeta:
    return RuleMeta(code=code, name=name, family=code[:3], summary=f"Summary of {name}.",
                    severity=severity, what=f"What {name} checks.", why=f"Why {name} matters.",
                    example="bad()", instead="good()")


# A fixed catalog keeps the golden files independent of how rules/*.yaml evolves.
CATALOG = {
    m.code: m
    for m in (
        _meta("MLA002", "inconclusive-input", Severity.ERROR),
        _meta("MLC003", "nan-weights", Severity.ERROR),
        _meta("MLK001", "missing-readme", Severity.WARNING),
        _meta("MLQ002", "unseeded-dataloader", Severity.INFO),
        _meta("MLS001", "unsafe-pickle", Severity.ERROR),
        _meta("MLT004", "no-gradient-clipping", Severity.WARNING),
    )
}


def _f(code: str, sev: Severity, msg: str, path: str, line: int | None = None,
       pointer: str | None = None, key: str = "", **kw) -> Finding:
    return Finding(code=code, name=CATALOG[code].name, severity=sev, message=msg,
                   location=Location(path, line=line, column=kw.pop("column", None), pointer=pointer),
                   fingerprint=fingerprint(code, path, pointer, key), **kw)


def hand_built_report() -> Report:
    findings = (
        _f("MLK001", Severity.WARNING, "README has 12 words; at least 30 expected", "."),
        _f("MLT004", Severity.WARNING, "no gradient clipping: max_norm is null, 100% of steps unclipped",
           "configs/train.yaml", line=7, pointer="optimizer.clip_grad_norm"),
        _f("MLS001", Severity.ERROR, "pickle imports os.system: arbitrary code runs on load",
           "models/legacy model.pt", evidence={"global": "os.system"},
           fix_hint="mlaudit fix --apply safetensors models/legacy model.pt"),
        _f("MLC003", Severity.ERROR, "3 of 512 values are NaN (0.59%)", "models/net.safetensors",
           pointer="encoder.layer.0.weight", evidence={"nan": 3, "numel": 512, "ratio": float("nan")}),
        _f("MLC003", Severity.ERROR, "1 of 64 values are NaN (1.6%)", "models/net.safetensors",
           pointer="encoder.layer.0.weight", baselined=True),
        _f("MLQ002", Severity.INFO, "DataLoader(shuffle=True) without a generator:\nline two, a|b <x> & 'q'",
           "train.py", line=42, column=9),
        _f("MLA002", Severity.ERROR, "could not be fully read: unrecognized checkpoint format\x01",
           "models/weird,name:1.pt"),
    )
    return Report(
        tool_version="0.1.0-test",
        roots=(".",),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        files_scanned=9,
        duration_s=1.25,
        rules_run=tuple(sorted(CATALOG)),
        suppressed=2,
        notes=("a note about the scan",),
    )


def _render(fmt: str, report: Report, **opts) -> str:
    buffer = io.StringIO()
    render(fmt, report, buffer, catalog=CATALOG, **opts)
    return buffer.getvalue()


GOLDEN_FILES = {
    "sarif": "report.sarif", "github": "report.github.txt", "gitlab": "report.gitlab.json",
    "junit": "report.junit.xml", "markdown": "report.md",
}  # fmt: skip


@pytest.mark.parametrize("fmt", sorted(GOLDEN_FILES))
@pytest.mark.parametrize("show_baselined", [False, True], ids=["default", "show-baselined"])
def test_golden(fmt, show_baselined):
    text = _render(fmt, hand_built_report(), show_baselined=show_baselined)
    name = GOLDEN_FILES[fmt]
    if show_baselined:
        name = name.replace("report.", "report.show-baselined.", 1)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with MLAUDIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_all_ci_formats_are_registered():
    # text, json, jsonl and html have their own tests (test_format_text, the schema tests,
    # test_jsonl, test_report_html)
    assert set(GOLDEN_FILES) | {"text", "json", "jsonl", "html"} == set(FORMATS)


@pytest.mark.parametrize("show_baselined", [False, True])
def test_sarif_validates_against_the_official_schema(show_baselined):
    schema_path = _sarif_schema()
    if schema_path is None:
        pytest.skip(f"{SARIF_SCHEMA_NAME} not found in a shared/schemas/ folder above tests/")
    from jsonschema import Draft4Validator

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    doc = json.loads(_render("sarif", hand_built_report(), show_baselined=show_baselined))
    errors = sorted(Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]


def test_sarif_meets_github_code_scanning_requirements():
    doc = sarif_dict(hand_built_report(), catalog=CATALOG)
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(CATALOG)
    for rule in rules:
        meta = CATALOG[rule["id"]]
        level = {"error": "error", "warning": "warning", "info": "note"}[meta.severity.value]
        assert rule["defaultConfiguration"]["level"] == level
        assert rule["fullDescription"]["text"] and meta.what in rule["fullDescription"]["text"]
        assert rule["help"]["markdown"].startswith(f"# {meta.code} {meta.name}")
    results = run["results"]
    assert len(results) == 6  # the baselined finding is left out by default
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        phys = r["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uriBaseId"] == SRCROOT
        uri = phys["artifactLocation"]["uri"]
        assert not uri.startswith(("/", "file:")) and ".." not in uri
        assert phys["region"]["startLine"] >= 1
        assert len(r["partialFingerprints"][FINGERPRINT_KEY]) == 32
    by_rule = {r["ruleId"]: r for r in results}
    binary = by_rule["MLC003"]
    assert "encoder.layer.0.weight" in binary["message"]["text"]
    [logical] = binary["locations"][0]["logicalLocations"]
    assert logical["fullyQualifiedName"] == "encoder.layer.0.weight"
    assert by_rule["MLS001"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "models/legacy%20model.pt"
    )
    region = by_rule["MLQ002"]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 42, "startColumn": 9}


def test_sarif_baselined_results_are_notes_with_baseline_state():
    results = sarif_dict(hand_built_report(), show_baselined=True, catalog=CATALOG)["runs"][0]["results"]
    states = {(r["ruleId"], r["baselineState"], r["level"]) for r in results}
    assert ("MLC003", "unchanged", "note") in states and ("MLC003", "new", "error") in states
    assert all("baselineState" in r for r in results)  # SARIF: all or none in a run


def test_github_annotation_escaping():
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    f = _f("MLA002", Severity.ERROR, "50% broken\nsecond line", "models/w,e:ird.pt")
    assert annotation(f) == (
        "::error file=models/w%2Ce%3Aird.pt,title=MLA002 inconclusive-input::50%25 broken%0Asecond line"
    )
    line = _f("MLQ002", Severity.INFO, "m", "train.py", line=3, column=2)
    assert annotation(line) == "::notice file=train.py,line=3,col=2,title=MLQ002 unseeded-dataloader::m"
    project = _f("MLK001", Severity.WARNING, "no README", ".")
    assert annotation(project) == "::warning title=MLK001 missing-readme::no README"


def test_github_output_has_one_command_per_finding():
    text = _render("github", hand_built_report())
    commands = [ln for ln in text.splitlines() if ln.startswith("::")]
    assert len(commands) == 6 and all("\n" not in c and "\r" not in c for c in commands)


def test_gitlab_code_quality_fields():
    items = issues(hand_built_report(), show_baselined=True)
    assert len(items) == 7
    for item in items:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= set(item)
        assert item["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert not item["location"]["path"].startswith("/")
        assert item["location"]["lines"]["begin"] >= 1
    assert len({i["fingerprint"] for i in items}) == len(items)  # GitLab collapses duplicates
    pairs = {(i["check_name"].split()[0], i["severity"]) for i in items}
    assert pairs == {("MLS001", "critical"), ("MLA002", "major"), ("MLT004", "minor"), ("MLK001", "minor"),
                     ("MLQ002", "info"), ("MLC003", "major"), ("MLC003", "info")}  # baselined -> info
    tensor = next(i for i in items if i["check_name"].startswith("MLC003") and i["severity"] == "major")
    assert tensor["location"] == {"path": "models/net.safetensors", "lines": {"begin": 1}}
    assert "encoder.layer.0.weight" in tensor["description"]


def test_junit_is_well_formed_with_one_case_per_rule_and_file():
    report = hand_built_report()
    text = _render("junit", report)
    root = ET.fromstring(text.encode("utf-8"))  # raises on malformed XML
    cases = root.findall("./testsuite/testcase")
    pairs = {(c.get("classname").split(".")[0], c.get("name")) for c in cases}
    expected = {(f.code, f.location.path) for f in report.findings if not f.baselined}
    assert expected <= pairs and len(cases) == len(pairs)
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == len(expected) == int(root.get("failures"))
    assert int(root.get("tests")) == len(cases)
    bad_chars = next(c for c in failures if c.get("name") == "models/weird,name:1.pt")
    assert "\x01" not in bad_chars.find("failure").text


def test_junit_rule_without_findings_is_a_passing_case():
    report = hand_built_report()
    clean = Report(tool_version="t", roots=(".",), findings=(), files_scanned=1, duration_s=0.0,
                   rules_run=("MLA002", "MLK001"))
    root = junit_tree(clean)
    assert [(c.get("classname"), c.find("failure")) for c in root.iter("testcase")] == [
        ("MLA002", None), ("MLK001", None)
    ]
    assert report.findings  # the hand-built report is not empty


def test_markdown_cells_are_escaped_and_top_findings_capped():
    assert cell("a|b\nc") == "a\\|b<br>c"
    text = _render("markdown", hand_built_report(), top=2)
    assert "### Top findings (2 of 6)" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| MLS001 | error")]
    assert rows, text  # errors come first
