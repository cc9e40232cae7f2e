"""The HTML reports without a browser: self-contained, every chart titled, the numbers shown are
the JSON report's, secrets never copied, matplotlib imported only when HTML is asked for.
(tests/test_browser.py opens the same reports in headless Chromium.)"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mlaudit.inputs.training_config import _masked
from mlaudit.report.fix_html import render_fix
from tests.htmlkit import external_references, number, parse

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "build" / "sample_project"
LAYER_COLUMNS = ("bytes", "norm", "std", "zero_fraction", "dead_rows", "nan", "inf", "grad_norm")


def scan_both(run_cli, target: Path, tmp_path: Path) -> tuple[dict, str]:
    """One scan writing JSON and HTML; (the JSON document, the HTML text)."""
    js, page = tmp_path / "r.json", tmp_path / "r.html"
    code, _out, err = run_cli("scan", target, "--isolated", "--exit-zero", "-q",
                              "--output", f"json={js}", "--output", f"html={page}")
    assert code == 0, err
    return json.loads(js.read_text()), page.read_text()


def assert_layers_match(doc: dict, html: str) -> int:
    """Every per-tensor table row equals the JSON `layers` row of its checkpoint; returns rows seen."""
    page = parse(html)
    layers = {a["path"]: a["details"]["layers"] for a in doc["artifacts"] if a["kind"] == "checkpoint-stats"}
    seen = 0
    for table_id, rows in page.tables.items():
        if not table_id.endswith("-layers"):
            continue
        expected = layers[page.table_section[table_id]]
        assert [r.attrs["data-layer"] for r in rows] == [e["name"] for e in expected]
        for row, want in zip(rows, expected, strict=True):
            shown = [number(v) for _text, v in row.cells[3:3 + len(LAYER_COLUMNS)]]
            assert shown == [want[c] for c in LAYER_COLUMNS], (table_id, want["name"])
            seen += 1
    return seen


def test_scan_html_is_self_contained_titled_and_shows_the_json_numbers(run_cli, tmp_path):
    doc, html = scan_both(run_cli, SAMPLE, tmp_path)
    assert external_references(html) == []
    page = parse(html)
    csp = [m["content"] for m in page.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    # the summary cards and the findings table are the JSON's
    assert {k: int(page.counts[k]) for k in ("error", "warning", "info")} == doc["summary"]["counts"]
    rows = page.tables["findings-table"]
    assert sorted(r.attrs["data-code"] for r in rows) == sorted(f["code"] for f in doc["findings"])
    # each rule code links to its documentation in the page
    assert {f"rule-{r.attrs['data-code']}" for r in rows} <= page.ids
    # per checkpoint: a memory chart and a weight-health chart, each an SVG with its title
    ckpts = [a["path"] for a in doc["artifacts"] if a["kind"] == "checkpoint-stats"]
    assert len(ckpts) == 11
    assert sum(1 for c in page.charts if c.endswith("-memory")) == len(ckpts)
    assert sum(1 for c in page.charts if c.endswith("-health")) == len(ckpts)
    for chart_id, text in page.charts.items():
        assert page.chart_svgs[chart_id] == 1, chart_id
        assert any(t in text for t in ("Memory by module", "Weight health", "gradient norm",
                                       "Findings by family")), chart_id
    # Adam moments exist in three sample checkpoints: their gradient norms are drawn
    grads = [a for a in doc["artifacts"] if a["kind"] == "checkpoint-stats"
             and any(layer["grad_norm"] for layer in a["details"]["layers"])]
    assert len(grads) == sum(1 for c in page.charts if c.endswith("-grads")) >= 3
    assert assert_layers_match(doc, html) == sum(len(a["details"]["layers"]) for a in doc["artifacts"]
                                                 if a["kind"] == "checkpoint-stats")


def test_config_excerpt_shows_flagged_lines_and_never_the_secret(run_cli, tmp_path):
    doc, html = scan_both(run_cli, SAMPLE, tmp_path)
    secret_line = next(ln for ln in (SAMPLE / "configs" / "train.yaml").read_text().splitlines()
                       if "wandb_api_key" in ln)
    secret = secret_line.split(":", 1)[1].strip()
    assert len(secret) > 20 and secret not in html and secret not in json.dumps(doc)
    excerpt = next(a for a in doc["artifacts"] if a["kind"] == "config-excerpt"
                   and a["path"].endswith("configs/train.yaml"))
    flagged = {f["location"]["line"] for f in doc["findings"]
               if f["location"]["path"] == excerpt["path"] and f["location"]["line"]}
    assert set(excerpt["details"]["flagged"]) == flagged
    assert {str(n) for n in flagged} <= set(excerpt["details"]["lines"])
    assert excerpt["details"]["lines"]["10"].strip() == "lr: 0.1"  # MLT005's line, as written
    assert "value hidden by mlaudit" in excerpt["details"]["lines"]["19"]


@pytest.mark.parametrize(("line", "flagged", "hidden"), [
    ("  hub_token: hf_abcdefghijklmnop", False, True),  # secret-named key: hidden even unflagged
    ("api_key = 'sk-123'", False, True),
    ("lr: 0.1", False, False),
    ("learning_rate: 3e-4", True, True),  # a secret rule flagged it: hidden whatever the key
    ("password:", False, False),  # nothing to hide
])
def test_excerpt_masking(line, flagged, hidden):
    shown = _masked(line, flagged)
    assert (shown != line) is hidden
    if hidden:
        assert line.split(":" if ":" in line else "=", 1)[1].strip() not in shown


def test_layer_rows_are_the_tensor_numbers(run_cli, tmp_path):
    """Norm, spread, sparsity, dead units, NaN/Inf and the Adam gradient norm against numpy."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 8)).pow(2).mean().backward()
        opt.step()
    with torch.no_grad():
        model[0].weight[1].zero_()  # one dead unit
        model[2].weight[0, 0] = float("nan")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "m.pt")
    out = tmp_path / "out"
    out.mkdir()
    doc, html = scan_both(run_cli, tmp_path / "m.pt", out)
    layers = {r["key"]: r for a in doc["artifacts"] if a["kind"] == "checkpoint-stats"
              for r in a["details"]["layers"]}
    state = opt.state_dict()["state"]
    for idx, (key, tensor) in enumerate(model.state_dict().items()):
        row, values = layers[key], tensor.numpy().astype(np.float64)
        finite = values[np.isfinite(values)]
        assert row["bytes"] == tensor.numel() * 4
        assert row["norm"] == pytest.approx(np.linalg.norm(finite), rel=1e-5)
        assert row["std"] == pytest.approx(finite.std(), rel=1e-4, abs=1e-9)
        assert row["zero_fraction"] == pytest.approx((values == 0).mean(), abs=1e-4)
        assert row["nan"] == int(np.isnan(values).sum())
        if values.ndim == 2:
            assert row["dead_rows"] == int((values == 0).all(axis=1).sum())
        v = state[idx]["exp_avg_sq"].numpy().astype(np.float64)
        expected = math.sqrt(v.sum() / (1 - 0.99 ** float(state[idx]["step"])))
        assert row["grad_norm"] == pytest.approx(expected, rel=1e-5)
    assert layers["0.weight"]["dead_rows"] == 1 and layers["2.weight"]["nan"] == 1
    assert assert_layers_match(doc, html) == 4


def test_text_and_json_scans_never_import_matplotlib(tmp_path):
    probe = (
        "import sys; from mlaudit.cli import main\n"
        "for fmt in ('text', 'json', 'sarif'):\n"
        f"    main(['scan', {str(SAMPLE)!r}, '--isolated', '--exit-zero', '-q', '--format', fmt])\n"
        "print('MATPLOTLIB' if 'matplotlib' in sys.modules else 'CLEAN', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.stderr.strip().splitlines()[-1] == "CLEAN", proc.stderr[-2000:]


def test_html_without_matplotlib_is_one_clear_line(tmp_path):
    probe = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
        "from mlaudit.cli import main\n"
        f"sys.exit(main(['scan', {str(SAMPLE / 'README.md')!r}, '--isolated', '--format', 'html']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == ("mlaudit: error: the html format needs matplotlib: "
                                   "pip install 'mlaudit[html]'")


def test_html_to_stdout_is_one_document(run_cli):
    code, out, _err = run_cli("scan", SAMPLE / "configs" / "train.yaml", "--isolated", "--format", "html")
    assert code == 1  # the config's errors still fail the gate
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
    assert out.count("<html") == 1 and external_references(out) == []


def _fix_doc() -> dict:
    """A fix report as fix-report.json holds it (hand-built: no model run)."""
    lat = {"1": {"p50_ms": 0.5, "p95_ms": 0.9, "throughput_per_s": 2000.0},
           "32": {"p50_ms": 8.0, "p95_ms": 12.5, "throughput_per_s": 4000.0}}
    fid = {"mean_cosine": 0.999991, "min_cosine": 0.9999, "top1_agreement": 0.995, "max_abs_err": 0.1}
    return {
        "tool": "mlaudit", "version": "0", "input": "models/m.pt", "status": "ok", "budget_failure": None,
        "input_sha256": "ab" * 32, "input_unchanged": True, "threads": 1, "batches": [1, 32],
        "budget": {"cosine": 0.99}, "inputs": "eval-data", "warnings": ["synthetic inputs"],
        "energy_note": "estimate, not a measurement",
        "steps": [
            {"name": "int8", "applicability": "unsafe", "status": "applied", "detail": "2/3 quantized",
             "verified": "ok", "evidence": {
                 "candidate_nodes": 3, "sensitivity": {"a": 0.01, "b": 0.0001, "c": 0.2},
                 "kept_fp32": [{"node": "c", "sensitivity": 0.2, "why": "most sensitive"}]}},
            {"name": "prune", "applicability": "unsafe", "status": "applied", "detail": "zeroed",
             "evidence": {"layers": {"fc1": {"zero_fraction": 0.5, "rows_before": 16, "rows_after": 16},
                                     "fc2": {"zero_fraction": 0.25, "rows_before": 8, "rows_after": 8}},
                          "tried": [{"amount": 0.5, "removed": 10, "mean_cosine": 0.999,
                                     "top1_agreement": 1.0, "budget_miss": None}]}},
        ],
        "variants": [
            {"name": "input", "files": ["m.pt"], "size_bytes": 320000, "params": 1000, "nonzero_params": 1000,
             "latency": lat, "fidelity": fid, "accuracy": None, "macro_f1": None,
             "energy_wh_per_million_estimate": 2.5},
            {"name": "fixed weights", "files": ["m.safetensors"], "size_bytes": 80000, "params": 1000,
             "nonzero_params": 700},
            {"name": "onnx int8", "files": ["m.int8.onnx"], "size_bytes": 27000, "params": 1000,
             "nonzero_params": 700, "latency": lat, "fidelity": fid, "energy_wh_per_million_estimate": 0.04},
        ],
    }


def test_fix_html_shows_every_measured_number_and_marks_kept_fp32():
    doc = _fix_doc()
    html = render_fix(doc)
    assert external_references(html) == []
    page = parse(html)
    rows = {r.attrs["data-metric"]: [number(v) for _t, v in r.cells[1:]] for r in page.tables["variants"]}
    assert rows["size"] == [320000, 80000, 27000]
    assert rows["latency p95, batch 32 (ms)"] == [12.5, None, 12.5]  # not timed: "–", not 0
    assert rows["mean cosine"] == [0.999991, None, 0.999991]
    assert "accuracy" not in rows  # no labels: no accuracy row and no accuracy chart
    assert "chart-accuracy" not in page.charts
    sens = {r.attrs["data-node"]: (number(r.cells[1][1]), r.cells[2][0])
            for r in page.tables["int8-sensitivity"]}
    assert sens == {"c": (0.2, "kept fp32"), "a": (0.01, "int8"), "b": (0.0001, "int8")}
    assert "kept fp32" in page.charts["chart-int8-sensitivity"]
    prune = {r.attrs["data-layer"]: number(r.cells[1][1]) for r in page.tables["prune-layers"]}
    assert prune == {"fc1": 0.5, "fc2": 0.25}
    for chart in ("chart-size", "chart-latency-b1", "chart-latency-b32", "chart-throughput",
                  "chart-fidelity", "chart-energy", "chart-prune-sparsity"):
        assert page.chart_svgs[chart] == 1, chart
    assert "Latency at batch size 32" in page.charts["chart-latency-b32"]


def test_fix_html_without_int8_sensitivity_says_why():
    doc = _fix_doc()
    doc["steps"][0]["evidence"] = {"candidate_nodes": 3, "kept_fp32": [], "sensitivity": {}}
    page = parse(render_fix(doc))
    assert "int8-sensitivity" not in page.tables and "chart-int8-sensitivity" not in page.charts
    assert "no node's sensitivity was needed" in render_fix(doc)
    doc["steps"][0]["status"] = "skipped"
    assert "No per-node sensitivity was recorded (int8 step skipped)" in render_fix(doc)


def test_history_curves_are_drawn_with_the_findings_marked(run_cli, tmp_path):
    """Each flagged curve of a run history is a chart whose marks carry the rule codes; the step
    table is the findings' evidence."""
    histories = ROOT / "fixtures" / "build" / "histories"
    doc, html = scan_both(run_cli, histories, tmp_path)
    mlh = [f for f in doc["findings"] if f["code"].startswith("MLH") and "curve" in f["evidence"]]
    assert len(mlh) >= 5
    page = parse(html)
    charts = {k: v for k, v in page.charts.items() if k.startswith("hist-")}
    assert len(charts) == len({(f["location"]["path"], f["evidence"]["curve"]["series"]) for f in mlh})
    for f in mlh:  # the code is written on the chart of its curve
        series = f["evidence"]["curve"]["series"]
        assert any(f["code"] in text and series in text for text in charts.values()), f["code"]
    shown = sorted((r.attrs["data-code"], number(r.cells[2][1]))
                   for t, rows in page.tables.items() if t.startswith("hist-") for r in rows)
    assert shown == sorted((f["code"], f["evidence"]["step"]) for f in mlh)
