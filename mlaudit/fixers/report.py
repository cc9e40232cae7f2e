"""Before/after report: JSON + Markdown into the output directory, a rich table on screen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlaudit.fsutil import atomic_write_text
from mlaudit.units import format_bytes

COLUMNS = (
    "size",
    "params",
    "non-zero",
    "p50 b1",
    "p95 b1",
    "p50 bN",
    "thru bN",
    "mean cos",
    "min cos",
    "top-1 agr",
    "max abs",
    "accuracy",
    "F1",
    "Wh/1M (est)",
)


def _fmt(v: Any, kind: str = "") -> str:
    if v is None:
        return "-"
    if kind == "bytes":
        return format_bytes(v)
    if kind == "pct":
        return f"{v:.2%}"
    if kind == "cos":
        return f"{v:.6f}"
    if kind == "int":
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def rows(report: dict[str, Any]) -> list[list[str]]:
    """One list of cells per variant, in COLUMNS order (after the name)."""
    big = str(report["batches"][-1]) if report.get("batches") else "32"
    out = []
    for v in report["variants"]:
        lat = v.get("latency") or {}
        fid = v.get("fidelity") or {}
        b1, bn = lat.get("1", {}), lat.get(big, {})
        out.append([
            v["name"], _fmt(v.get("size_bytes"), "bytes"), _fmt(v.get("params"), "int"),
            _fmt(v.get("nonzero_params"), "int"),
            _fmt(b1.get("p50_ms")) + (" ms" if b1 else ""), _fmt(b1.get("p95_ms")) + (" ms" if b1 else ""),
            _fmt(bn.get("p50_ms")) + (" ms" if bn else ""),
            _fmt(bn.get("throughput_per_s")) + ("/s" if bn else ""),
            _fmt(fid.get("mean_cosine"), "cos"),
            _fmt(fid.get("min_cosine"), "cos"),
            _fmt(fid.get("top1_agreement"), "pct"),
            _fmt(fid.get("max_abs_err")), _fmt(v.get("accuracy"), "pct"), _fmt(v.get("macro_f1")),
            _fmt(v.get("energy_wh_per_million_estimate")),
        ])  # fmt: skip
    return out


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    big = report["batches"][-1] if report.get("batches") else 32
    lines = [
        f"# mlaudit fix: `{Path(report['input']).name}`",
        "",
        f"- status: **{report['status']}**"
        + (f" — {report['budget_failure']}" if report["budget_failure"] else ""),
        f"- input sha256 `{report['input_sha256']}` (unchanged: {report['input_unchanged']})",
        f"- threads: {report['threads']}; batches: 1 and {big} (bN); inputs: {report['inputs']}",
        f"- budget: {', '.join(f'{k}={v}' for k, v in report['budget'].items())}",
        "",
        "## Steps",
        "",
    ]
    for s in report["steps"]:
        verified = f" Verified: {s['verified']}." if s.get("verified") else ""
        lines.append(f"- `{s['name']}` ({s['applicability']}, {s['status']}): {s['detail']}.{verified}")
        for family, f in (s.get("evidence", {}).get("families") or {}).items():
            why = f" — {f['not_quantized_because']}" if f.get("not_quantized_because") else ""
            lines.append(
                f"  - {family}: {f['nodes_quantized']}/{f['nodes']} nodes, "
                f"{format_bytes(f['bytes_quantized'])} of {format_bytes(f['bytes'])} of weights "
                f"quantized{why}"
            )
        for kept in s.get("evidence", {}).get("kept_fp32", []):
            lines.append(
                f"  - kept fp32: `{kept['node']}` (sensitivity {kept['sensitivity']}): {kept['why']}"
            )
    lines += findings_section(report.get("findings"))
    lines += [
        "",
        "## Before / after",
        "",
        "| variant | " + " | ".join(COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(report)]
    lines += ["", f"Energy: {report['energy_note']}."]
    if report.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def findings_section(diff: dict[str, list[dict[str, Any]]] | None) -> list[str]:
    """Markdown lines: the scan's fixable findings removed, introduced and remaining (the
    output re-scanned with the same rules); nothing when the output was not scanned."""
    if diff is None:
        return []
    lines = ["", "## Findings", ""]
    labels = (("removed", "removed by the fix"), ("introduced", "introduced by the fix"),
              ("remaining", "still in the output"))  # fmt: skip
    for key, label in labels:
        entries = diff.get(key) or []
        lines.append(f"- {label}: {len(entries)}")
        lines += [f"  - {r['code']} `{r['location']}`: {r['message']}" for r in entries]
    return lines


def write_reports(report: dict[str, Any], directory: Path) -> None:
    """fix-report.json and fix-report.md into `directory`."""
    atomic_write_text(directory / "fix-report.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(directory / "fix-report.md", markdown(report))


def table(report: dict[str, Any]) -> Any:
    """A rich Table: one row per metric, one column per variant (reads well in 80 columns)."""
    from rich.table import Table

    data = rows(report)
    t = Table(title="before / after", show_edge=False)
    t.add_column("metric")
    for r in data:
        t.add_column(r[0], justify="right")
    for i, c in enumerate(COLUMNS, start=1):
        cells = [r[i] for r in data]
        if any(cell not in ("-", "- ms", "-/s") for cell in cells):
            t.add_row(c, *cells)
    return t
