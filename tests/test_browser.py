"""The HTML reports in a real browser: headless Chromium (Debian's `chromium`, driven by
Playwright), every network request blocked. Each report must open with no console error and
no outgoing request, every chart must be drawn with a non-zero size, and the numbers the page
shows must be the JSON report's. A screenshot of each report is saved under
benchmarks/results/ for people to look at.

`make test` installs chromium with apt-get when it is missing; where that is impossible these
tests skip and say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browserkit import chromium_path, visit
from tests.fixhelp import TRAINED, model_args
from tests.htmlkit import parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "build" / "sample_project"
SHOTS = ROOT / "benchmarks" / "results"

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
if chromium_path() is None:
    pytest.skip("chromium is not installed and could not be installed here (`make test` runs "
                "`apt-get install chromium` when it can); browser tests skipped", allow_module_level=True)


def _assert_clean_visit(v, html: str) -> None:
    assert v.errors == [], v.errors
    assert v.requests == [], v.requests
    figures = parse(html).charts
    drawn = {c["id"]: c for c in v.probe["charts"]}
    assert set(drawn) == set(figures) and drawn
    for chart in drawn.values():
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["texts"] > 3, chart  # title, axis labels, ticks are text, not paths


def _cells(v, table_id: str) -> list[dict]:
    return v.probe["tables"][table_id]


def test_scan_report_in_chromium(run_cli, tmp_path):
    js, page = tmp_path / "scan.json", tmp_path / "scan.html"
    code, _, err = run_cli("scan", SAMPLE, "--isolated", "--exit-zero", "-q",
                           "--output", f"json={js}", "--output", f"html={page}")
    assert code == 0, err
    doc, html = json.loads(js.read_text()), page.read_text()
    v = visit(page, SHOTS / "html-scan-report.png")
    _assert_clean_visit(v, html)
    assert v.probe["title"] == "mlaudit scan report"
    counts = v.probe["counts"]
    assert {k: int(counts[k]) for k in ("error", "warning", "info")} == doc["summary"]["counts"]
    assert int(counts["files scanned"]) == doc["summary"]["files_scanned"]
    rows = _cells(v, "findings-table")
    assert sorted(r["attrs"]["data-code"] for r in rows) == sorted(f["code"] for f in doc["findings"])
    # per checkpoint: the per-tensor table the browser shows equals the JSON rows
    layers = {a["path"]: a["details"]["layers"] for a in doc["artifacts"] if a["kind"] == "checkpoint-stats"}
    sections = parse(html).table_section
    checked = 0
    for table_id, path in sections.items():
        if not table_id.endswith("-layers"):
            continue
        for row, want in zip(_cells(v, table_id), layers[path], strict=True):
            assert row["attrs"]["data-layer"] == want["name"]
            shown = [None if c["v"] is None else float(c["v"]) for c in row["cells"][3:11]]
            assert shown == [want[k] for k in ("bytes", "norm", "std", "zero_fraction", "dead_rows", "nan",
                                               "inf", "grad_norm")]
            checked += 1
    assert checked == sum(len(rows) for rows in layers.values()) > 0


def test_fix_report_in_chromium(run_cli, tmp_path):
    out = tmp_path / "fixed"
    # a cosine budget whole-model int8 misses: per-node sensitivity is measured and the most
    # sensitive nodes are kept in fp32 until it is met (or all are kept: --keep-failed)
    code, _, err = run_cli("fix", TRAINED / "mlp.pt", "--apply", "onnx,int8", "--out", out,
                           "--budget", "cosine=0.999997", "--keep-failed", *model_args("mlp"))
    assert code in (0, 1), err
    doc = json.loads((out / "fix-report.json").read_text())
    html = (out / "fix-report.html").read_text()
    v = visit(out / "fix-report.html", SHOTS / "html-fix-report.png")
    _assert_clean_visit(v, html)
    names = [variant["name"] for variant in doc["variants"]]
    rows = {r["attrs"]["data-metric"]: r["cells"] for r in _cells(v, "variants")}
    for metric, get in (("size", lambda x: x.get("size_bytes")),
                        ("mean cosine", lambda x: (x.get("fidelity") or {}).get("mean_cosine")),
                        ("latency p50, batch 32 (ms)", lambda x: x["latency"]["32"]["p50_ms"])):
        shown = [None if c["v"] is None else float(c["v"]) for c in rows[metric][1:]]
        assert shown == [get(x) for x in doc["variants"]], metric
    assert len(rows["size"]) == len(names) + 1
    step = next(s for s in doc["steps"] if s["name"] == "int8")
    sens = {r["attrs"]["data-node"]: (float(r["cells"][1]["v"]), r["cells"][2]["text"])
            for r in _cells(v, "int8-sensitivity")}
    kept = {k["node"] for k in step["evidence"]["kept_fp32"]}
    assert kept and sens == {n: (s, "kept fp32" if n in kept else "int8")
                             for n, s in step["evidence"]["sensitivity"].items()}
    assert any(c["id"] == "chart-int8-sensitivity" for c in v.probe["charts"])
