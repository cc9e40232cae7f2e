"""Self-contained HTML before/after report of `mlaudit fix` (fix-report.html).

Reads the fix report document only (the same dict written as fix-report.json), never the
fixers: size, latency p50/p95 per batch size, throughput, fidelity, accuracy and F1 where
labels exist, the energy estimate, the scan findings the fix removed or introduced, int8
per-node sensitivity with the nodes kept in fp32 marked, and per-layer sparsity after
pruning. A value the run did not measure is shown as "–" and left out of its chart, never
drawn as zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from mlaudit.report import charts
from mlaudit.report.htmlpage import cell, esc, figure, fmt_bytes, page, table

# (column title, getter, unit) for the before/after table; getters return None when absent.
Getter = Any


def _lat(v: Mapping[str, Any], batch: str, key: str) -> float | None:
    return ((v.get("latency") or {}).get(batch) or {}).get(key)


def _fid(v: Mapping[str, Any], key: str) -> float | None:
    return (v.get("fidelity") or {}).get(key)


def _batches(report: Mapping[str, Any]) -> list[str]:
    seen: list[str] = [str(b) for b in report.get("batches") or []]
    for v in report.get("variants") or []:
        for b in (v.get("latency") or {}):
            if str(b) not in seen:
                seen.append(str(b))
    return sorted(seen, key=lambda b: int(b) if b.isdigit() else 0)


def _columns(batches: Sequence[str]) -> list[tuple[str, Getter, str]]:
    """(metric title, getter, unit) per row of the before/after table."""
    cols: list[tuple[str, Getter, str]] = [
        ("size", lambda v: v.get("size_bytes"), "bytes"),
        ("parameters", lambda v: v.get("params"), ""),
        ("non-zero parameters", lambda v: v.get("nonzero_params"), ""),
    ]
    for b in batches:
        cols += [
            (f"latency p50, batch {b} (ms)", lambda v, b=b: _lat(v, b, "p50_ms"), ""),
            (f"latency p95, batch {b} (ms)", lambda v, b=b: _lat(v, b, "p95_ms"), ""),
            (f"throughput, batch {b} (per s)", lambda v, b=b: _lat(v, b, "throughput_per_s"), "rate"),
        ]
    cols += [
        ("mean cosine", lambda v: _fid(v, "mean_cosine"), "score"),
        ("min cosine", lambda v: _fid(v, "min_cosine"), "score"),
        ("top-1 agreement", lambda v: _fid(v, "top1_agreement"), "score"),
        ("accuracy", lambda v: v.get("accuracy"), "score"),
        ("macro F1", lambda v: v.get("macro_f1"), "score"),
        ("energy, Wh per million (estimate)", lambda v: v.get("energy_wh_per_million_estimate"), ""),
    ]
    return cols


def _shown(value: Any, unit: str) -> str | None:
    """Cell text for a unit; None: the default number format."""
    if value is None or not isinstance(value, (int, float)):
        return None
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "rate":
        return f"{value:,.0f}"
    if unit == "score":  # cosines of 0.99999 must not print as 1
        return f"{value:.6f}"
    return None


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _spread(values: Sequence[float | None]) -> bool:
    """Whether values span more than 30x: then a log axis keeps the small ones visible."""
    pos = [v for v in _finite(values) if v > 0]
    return len(pos) > 1 and max(pos) / min(pos) > 30


def _zoom(values: Sequence[float | None]) -> tuple[float, float] | None:
    """Y range for scores near 1 (cosine, agreement): from just under the lowest to 1."""
    vals = _finite(values)
    if not vals:
        return None
    low = min(vals)
    pad = max((1 - low) * 0.5, 1e-6)
    return (max(0.0, low - pad), 1.0 + pad * 0.3)


def _variant_table(variants: Sequence[Mapping[str, Any]], cols: Sequence[tuple[str, Getter, str]]) -> str:
    """Metrics down, variants across (five variants read better side by side than 20 columns)."""
    rows = []
    for title, get, unit in cols:
        values = [get(v) for v in variants]
        if all(v is None for v in values):
            continue  # a metric no variant measured (no labels: no accuracy) is left out
        cells = "".join(cell(value, num=True, text=_shown(value, unit)) for value in values)
        rows.append(f'<tr data-metric="{esc(title)}"><td>{esc(title)}</td>{cells}</tr>')
    headers = ["metric", *[str(v.get("name")) for v in variants]]
    return table(headers, rows, num_cols=range(1, len(variants) + 1), table_id="variants")


def _present(names: Sequence[str], series: Mapping[str, Sequence[float | None]]
             ) -> tuple[list[str], dict[str, list[float | None]]]:
    """Only the variants with at least one value in this chart (no empty slots)."""
    keep = [i for i in range(len(names)) if any(_finite([vals[i]]) for vals in series.values())]
    return [names[i] for i in keep], {k: [vals[i] for i in keep] for k, vals in series.items()}


def _charts(report: Mapping[str, Any], variants: Sequence[Mapping[str, Any]],
            batches: Sequence[str]) -> list[str]:
    names = [str(v.get("name")) for v in variants]
    out: list[str] = []
    sizes = [v.get("size_bytes") for v in variants]
    if _finite(sizes):
        have = [(n, s) for n, s in zip(names, sizes, strict=True) if s is not None]
        out.append(figure(charts.hbar("Size on disk", [h[0] for h in have],
                                      {"bytes": [h[1] for h in have]}, xlabel="size", units="bytes"),
                          "File bytes of each variant (all its files).", "chart-size"))
    for b in batches:
        p50 = [_lat(v, b, "p50_ms") for v in variants]
        p95 = [_lat(v, b, "p95_ms") for v in variants]
        if not _finite(p50 + p95):
            continue
        out.append(figure(
            charts.grouped_bars(f"Latency at batch size {b}", *_present(names, {"p50": p50, "p95": p95}),
                                ylabel="ms per batch", log=_spread(p50 + p95)),
            f"Wall time per call of batch {b}, p50 and p95 over the timed rounds (lower is better).",
            f"chart-latency-b{b}"))
    thru = {f"batch {b}": [_lat(v, b, "throughput_per_s") for v in variants] for b in batches}
    if any(_finite(t) for t in thru.values()):
        allv = [x for t in thru.values() for x in t]
        out.append(figure(charts.grouped_bars("Throughput", *_present(names, thru),
                                              ylabel="samples per second",
                                              log=_spread(allv), value_format="{:,.0f}"),
                          "Samples per second at each batch size (higher is better).", "chart-throughput"))
    fid = {"mean cosine": [_fid(v, "mean_cosine") for v in variants],
           "min cosine": [_fid(v, "min_cosine") for v in variants],
           "top-1 agreement": [_fid(v, "top1_agreement") for v in variants]}
    allf = [x for t in fid.values() for x in t]
    if _finite(allf):
        out.append(figure(charts.grouped_bars("Fidelity to the input model", *_present(names, fid),
                                              ylabel="score",
                                              ylim=_zoom(allf), value_format="{:.6f}"),
                          "Cosine similarity of outputs and top-1 agreement with the input model on the "
                          f"same inputs ({esc(report.get('inputs') or 'inputs')}); the axis is zoomed.",
                          "chart-fidelity"))
    acc = {"accuracy": [v.get("accuracy") for v in variants],
           "macro F1": [v.get("macro_f1") for v in variants]}
    alla = [x for t in acc.values() for x in t]
    if _finite(alla):
        out.append(figure(charts.grouped_bars("Accuracy and F1 on the labelled data", *_present(names, acc),
                                              ylabel="score", ylim=_zoom(alla), value_format="{:.4f}"),
                          "Only where --eval-data carried labels; the axis is zoomed.", "chart-accuracy"))
    energy = [v.get("energy_wh_per_million_estimate") for v in variants]
    if _finite(energy):
        have = [(n, e) for n, e in zip(names, energy, strict=True) if e is not None]
        out.append(figure(charts.hbar("Estimated energy per million inferences",
                                      [h[0] for h in have], {"Wh": [h[1] for h in have]},
                                      xlabel="Wh (estimate)", log=_spread(energy)),
                          f"Energy: {report.get('energy_note') or 'an estimate, not a measurement'}.",
                          "chart-energy"))
    return out


def _step(report: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for s in report.get("steps") or []:
        if s.get("name") == name:
            return s
    return None


def _int8(report: Mapping[str, Any]) -> str:
    step = _step(report, "int8")
    if step is None:
        return ""
    ev = step.get("evidence") or {}
    kept = {k.get("node"): k for k in ev.get("kept_fp32") or []}
    sens: dict[str, float] = dict(ev.get("sensitivity") or {})
    for node, k in kept.items():
        if node not in sens and k.get("sensitivity") is not None:
            sens[node] = k["sensitivity"]
    out = ['<section id="int8"><h2>int8: per-node sensitivity</h2>']
    if sens:
        ranked = sorted(sens, key=lambda n: -sens[n])
        kind = str(ev.get("sensitivity_kind") or "sensitivity (higher: int8 hurts this node more)")
        svg = charts.hbar("int8 sensitivity per node", ranked, {"sensitivity": [sens[n] for n in ranked]},
                          xlabel="sensitivity", marks=["kept fp32" if n in kept else "" for n in ranked],
                          log=_spread(list(sens.values())))
        out.append(figure(svg, f"Sensitivity: {kind}. The nodes marked were kept in fp32 because the "
                          "fidelity budget needed them; the others run in int8.", "chart-int8-sensitivity"))
        rows = [f'<tr data-node="{esc(n)}"><td><code>{esc(n)}</code></td>{cell(sens[n], num=True)}'
                f"<td>{'kept fp32' if n in kept else 'int8'}</td>"
                f"<td>{esc((kept.get(n) or {}).get('why', ''))}</td></tr>" for n in ranked]
        out.append(table(["node", "sensitivity", "precision", "why"], rows, num_cols=(1,),
                         table_id="int8-sensitivity"))
    elif step.get("status") == "applied" and not kept:
        nodes = ev.get("candidate_nodes", ev.get("quantizable_nodes"))
        out.append(f"<p>{esc(nodes if nodes is not None else 'All')} candidate nodes; whole-model int8 met "
                   "the fidelity budget on the first try, so no node's sensitivity was needed and none was "
                   "kept in fp32.</p>")
    else:
        out.append(f"<p>No per-node sensitivity was recorded (int8 step {esc(step.get('status', '?'))}).</p>")
    out.append(f"<p class=\"note\">{esc(step.get('detail', ''))}</p></section>")
    return "".join(out)


def _prune(report: Mapping[str, Any]) -> str:
    step = _step(report, "prune")
    if step is None:
        return ""
    ev = step.get("evidence") or {}
    out = ['<section id="prune"><h2>Pruning: per-layer result</h2>']
    layers: Mapping[str, Mapping[str, Any]] = ev.get("layers") or {}
    if layers:
        names = list(layers)
        sparsity = [layers[n].get("zero_fraction") for n in names]
        out.append(figure(charts.hbar("Sparsity per layer after pruning", names,
                                      {"zero fraction": [s or 0.0 for s in sparsity]},
                                      xlabel="zero fraction"),
                          "Share of exactly-zero weights per pruned layer.", "chart-prune-sparsity"))
        rows = [f'<tr data-layer="{esc(n)}"><td><code>{esc(n)}</code></td>'
                + cell(layers[n].get("zero_fraction"), num=True)
                + cell(layers[n].get("rows_before"), num=True) + cell(layers[n].get("rows_after"), num=True)
                + "</tr>" for n in names]
        out.append(table(["layer", "zero fraction", "units before", "units after"], rows,
                         num_cols=(1, 2, 3), table_id="prune-layers"))
    tried = ev.get("tried") or []
    if tried:
        rows = [f"<tr>{cell(t.get('amount'), num=True)}{cell(t.get('removed'), num=True)}"
                f"{cell(t.get('mean_cosine'), num=True)}{cell(t.get('top1_agreement'), num=True)}"
                f"<td>{esc(t.get('budget_miss') or 'within budget')}</td></tr>" for t in tried]
        out.append("<h3>Amounts tried</h3>" + table(["amount", "removed", "mean cosine", "top-1 agreement",
                                                     "budget"], rows, num_cols=(0, 1, 2, 3),
                                                    table_id="prune-tried"))
    out.append(f"<p class=\"note\">{esc(step.get('detail', ''))}</p></section>")
    return "".join(out)


def _findings(report: Mapping[str, Any]) -> str:
    """The scan's fixable findings removed, introduced and remaining (output re-scanned)."""
    diff = report.get("findings")
    if not diff:
        return ""
    out = ['<section id="findings"><h2>Findings</h2><p>The fixable rules were run again on the '
           "written state file: what the fix removed, introduced and left.</p>"]
    for key, label in (("removed", "removed by the fix"), ("introduced", "introduced by the fix"),
                       ("remaining", "still in the output")):
        entries = diff.get(key) or []
        rows = [f'<tr data-finding="{esc(key)}"><td><b>{esc(r.get("code"))}</b></td>'
                f"<td>{esc(r.get('severity', ''))}</td><td><code>{esc(r.get('location', ''))}</code></td>"
                f"<td>{esc(r.get('message', ''))}</td></tr>" for r in entries]
        out.append(f"<h3>{esc(label)}: {len(entries)}</h3>")
        if rows:
            out.append(table(["rule", "severity", "location", "message"], rows, table_id=f"findings-{key}"))
    out.append("</section>")
    return "".join(out)


def render_fix(report: Mapping[str, Any]) -> str:
    """The fix report document (fix-report.json's content) as one HTML page."""
    # Exactly what fix-report.json holds (written with default=str): numpy scalars in the live
    # dict become the plain numbers, or strings, the JSON shows.
    report = json.loads(json.dumps(report, default=str))
    variants = list(report.get("variants") or [])
    batches = _batches(report)
    name = PurePath(str(report.get("input", "input"))).name
    status = str(report.get("status", "?"))
    failure = report.get("budget_failure")
    subtitle = (f"mlaudit {esc(report.get('version', ''))} · status <b>{esc(status)}</b>"
                + (f" — {esc(failure)}" if failure else "")
                + f" · input unchanged: {esc(report.get('input_unchanged'))}"
                + f" · threads {esc(report.get('threads', '?'))}")
    nav = [("steps", "Steps"), ("before-after", "Before / after")]
    body = []
    rows = [f'<tr data-step="{esc(s.get("name"))}"><td><b>{esc(s.get("name"))}</b></td>'
            f"<td>{esc(s.get('applicability', ''))}</td><td>{esc(s.get('status', ''))}</td>"
            f"<td>{esc(s.get('detail', ''))}</td><td>{esc(s.get('verified') or '')}</td></tr>"
            for s in report.get("steps") or []]
    budget = ", ".join(f"{k}={v}" for k, v in (report.get("budget") or {}).items() if v is not None)
    body.append(f'<section id="steps"><h2>Steps</h2><p>Input <code>{esc(report.get("input", ""))}</code> '
                f"(sha256 <code>{esc(str(report.get('input_sha256', ''))[:16])}…</code>); budget: "
                f"{esc(budget)}.</p>"
                + table(["step", "applicability", "status", "detail", "verified"], rows,
                        table_id="steps-table")
                + "</section>")
    cols = _columns(batches)
    body.append('<section id="before-after"><h2>Before / after</h2>'
                + "".join(_charts(report, variants, batches)) + _variant_table(variants, cols)
                + "</section>")
    parts = (("findings", _findings(report)), ("int8", _int8(report)), ("prune", _prune(report)))
    for section_id, html_part in parts:
        if html_part:
            nav.append((section_id, section_id))
            body.append(html_part)
    if report.get("warnings"):
        nav.append(("warnings", "Warnings"))
        body.append('<section id="warnings"><h2>Warnings</h2><ul>'
                    + "".join(f"<li>{esc(w)}</li>" for w in report["warnings"]) + "</ul></section>")
    return page(f"mlaudit fix: {name}", subtitle, nav, body)
