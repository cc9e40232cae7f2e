"""--format jsonl (issue 15): one record per line, grouped by checkpoint, a summary last."""

from __future__ import annotations

import io
import json

from fixtures.gen.fleet_corpus import build_registry
from mlaudit.cli import main
from mlaudit.report import render
from mlaudit.report.json_format import report_dict
from tests.test_formats import hand_built_report


def _records(report) -> list[dict]:
    out = io.StringIO()
    render("jsonl", report, out)
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_every_finding_is_one_line_and_the_summary_comes_last():
    report = hand_built_report()
    records = _records(report)
    findings = [{k: v for k, v in r.items() if k != "type"} for r in records if r["type"] == "finding"]
    doc = report_dict(report)
    assert sorted(findings, key=json.dumps) == sorted(doc["findings"], key=json.dumps)
    assert records[-1]["type"] == "summary" and [r["type"] for r in records].count("summary") == 1
    assert records[-1]["counts"] == doc["summary"]["counts"]
    assert records[-1]["files_scanned"] == 9


def test_a_registry_gives_one_checkpoint_line_per_file_followed_by_its_findings(tmp_path, capsys):
    build_registry(tmp_path / "reg", 30, seed=4)
    code = main(["scan", str(tmp_path / "reg"), "--isolated", "--select", "MLS,MLA", "--format", "jsonl"])
    assert code == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    checkpoints = [r for r in records if r["type"] == "checkpoint"]
    files = sorted(p for p in (tmp_path / "reg").rglob("*") if p.is_file())
    readable = [r["path"] for r in checkpoints]
    assert len(readable) == len(set(readable)) and readable == sorted(readable)
    assert all(r["verdict"] in ("clean", "unsafe", "inconclusive", "metadata") for r in checkpoints)
    # each finding about a checkpoint follows that checkpoint's line
    current = None
    for r in records:
        if r["type"] == "checkpoint":
            current = r["path"]
        elif r["type"] == "finding" and r["location"]["path"] in readable:
            assert r["location"]["path"] == current
    evil = [r for r in records if r["type"] == "finding" and "evil_" in r["location"]["path"]]
    assert evil and {r["code"] for r in evil} & {"MLS001", "MLS002"}
    broken = {r["location"]["path"] for r in records if r["type"] == "finding" and r["code"] == "MLA002"}
    assert broken and len(files) == records[-1]["files_scanned"]
