"""Self-contained HTML scan report with static SVG charts (`--format html`).

Sections: a summary by severity and family; the findings table (sortable, filterable, each
code one click from its rule's documentation); per checkpoint, memory by module and dtype,
per-tensor weight health and Adam-estimated gradient norms; per config, the flagged lines
in context; per training-run history with findings, the flagged curves with the steps marked.
Everything is read from the Report (findings and artifact details): the same numbers the JSON
report carries, which the browser test checks cell by cell.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import IO, Any

from mlaudit.catalog import FAMILIES, load_catalog
from mlaudit.model import ArtifactSummary, Finding, Report, RuleMeta, Severity
from mlaudit.report import charts
from mlaudit.report.htmlpage import anchor, cell, esc, figure, fmt_bytes, fmt_num, page, table

SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)
MAX_MODULE_GROUPS = 40  # bars in the memory-by-module chart before grouping coarser


def _details(report: Report, kind: str) -> dict[str, Mapping[str, Any]]:
    return {a.path: a.details for a in report.artifacts if a.kind == kind}


def _summary(report: Report, findings: Sequence[Finding]) -> str:
    counts = report.counts()
    baselined = sum(1 for f in report.findings if f.baselined)
    cards = "".join(
        f'<div class="card"><span class="n sev-{s.value}" data-count="{s.value}">{counts[s.value]}</span>'
        f"{s.value}</div>" for s in SEVERITIES)
    extra = [("baselined", baselined), ("suppressed", report.suppressed),
             ("files scanned", report.files_scanned), ("rules run", len(report.rules_run))]
    cards += "".join(f'<div class="card"><span class="n" data-count="{esc(k)}">{v:,}</span>{esc(k)}</div>'
                     for k, v in extra)
    out = [f'<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div>']
    live = [f for f in findings if not f.baselined]
    if live:
        by = Counter((f.code[:3], f.severity.value) for f in live)
        fams = sorted({fam for fam, _ in by}, key=lambda fam: -sum(by[fam, s.value] for s in SEVERITIES))
        labels = [f"{fam} {FAMILIES.get(fam, '').split(':')[0]}".strip() for fam in fams]
        series = {s.value: [by[fam, s.value] for fam in fams] for s in SEVERITIES}
        svg = charts.hbar("Findings by family and severity", labels, series, xlabel="findings",
                          colors=charts.SEVERITY_COLORS)
        out.append(figure(svg, "Baselined findings are not counted.", "chart-families"))
        rows = [f"<tr><td>{esc(lb)}</td>" + "".join(cell(by[fam, s.value], num=True) for s in SEVERITIES)
                + cell(sum(by[fam, s.value] for s in SEVERITIES), num=True) + "</tr>"
                for fam, lb in zip(fams, labels, strict=True)]
        out.append(table(["family", "error", "warning", "info", "total"], rows, num_cols=(1, 2, 3, 4),
                         table_id="family-counts"))
    out.append("</section>")
    return "".join(out)


def _findings_table(findings: Sequence[Finding]) -> str:
    out = ['<section id="findings"><h2>Findings</h2>']
    if not findings:
        return out[0] + "<p>No findings.</p></section>"
    boxes = "".join(f'<label><input type="checkbox" value="{s.value}" checked> {s.value}</label>'
                    for s in (*SEVERITIES,)) + \
        '<label><input type="checkbox" value="baselined" checked> baselined</label>'
    out.append(f'<div class="filters" data-for="findings-table"><input type="search" '
               f'placeholder="filter: code, path, tensor, text" aria-label="filter findings">{boxes}'
               f'<span><span class="shown">{len(findings)}</span> shown</span></div>')
    ranked = sorted(findings, key=lambda f: (f.baselined, -f.severity.rank, f.sort_key()))
    rows = []
    for f in ranked:
        sev = "baselined" if f.baselined else f.severity.value
        hint = f'<br><span class="note">fix: {esc(f.fix_hint)}</span>' if f.fix_hint else ""
        rows.append(
            f'<tr data-sev="{sev}" data-code="{esc(f.code)}">'
            f'<td class="sev sev-{f.severity.value}" data-v="{f.severity.rank}">{sev}</td>'
            f'<td><a href="#rule-{esc(f.code)}" title="rule documentation">{esc(f.code)}</a><br>'
            f'<span class="note">{esc(f.name)}</span></td>'
            f"<td><code>{esc(f.location.display())}</code></td><td>{esc(f.message)}{hint}</td></tr>")
    out.append(table(["severity", "rule", "location", "message"], rows, table_id="findings-table",
                     sortable=True))
    out.append("</section>")
    return "".join(out)


def _rule_docs(codes: Sequence[str], catalog: Mapping[str, RuleMeta]) -> str:
    out = ['<section id="rules"><h2>Rules in this report</h2>']
    for code in codes:
        meta = catalog.get(code)
        if meta is None:  # a plugin rule without catalog text: say so, link still lands here
            out.append(f'<details class="rule" id="rule-{esc(code)}"><summary>{esc(code)}</summary>'
                       "<p>No documentation in the catalog.</p></details>")
            continue
        parts = [f"<p>{esc(meta.summary)}</p>",
                 f"<p class=\"note\">family {esc(meta.family)} ({esc(FAMILIES.get(meta.family, ''))}), "
                 f"default severity {meta.severity.value}, {esc(meta.status)}"
                 + (f", fix: <code>mlaudit fix --apply {esc(meta.fix.fixer)}</code> "
                    f"({meta.fix.applicability})"
                    if meta.fix else "") + "</p>"]
        for title, body in (("What it does", meta.what), ("Why is this bad?", meta.why)):
            if body:
                parts.append(f"<h4>{title}</h4><p>{esc(body)}</p>")
        for title, body in (("Example", meta.example), ("Instead", meta.instead)):
            if body:
                parts.append(f"<h4>{title}</h4><pre>{esc(body)}</pre>")
        if meta.sources:
            parts.append("<h4>Sources</h4><ul>" + "".join(f"<li>{esc(s)}</li>" for s in meta.sources)
                         + "</ul>")
        out.append(f'<details class="rule" id="rule-{esc(code)}"><summary><b>{esc(code)}</b> '
                   f"{esc(meta.name)}</summary>{''.join(parts)}</details>")
    out.append("</section>")
    return "".join(out)


def _module_pattern(key: str, depth: int) -> str:
    """The tensor's module path (its own name dropped) with block indices as `*`, cut to
    `depth` parts: `model.layers.7.attn.q_proj.weight` -> `model.layers.*.attn.q_proj`. Memory
    then reads per kind of module (all q_proj together) however many blocks the model has."""
    parts = key.split(".")[:-1] or [key]
    return ".".join("*" if p.isdigit() else p for p in parts[:depth])


def _module_groups(layers: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[float]]]:
    """Bytes per module kind and dtype, at the deepest depth that keeps the chart readable."""
    keys = [str(layer.get("key") or layer["name"]) for layer in layers]
    depth = max(len(k.split(".")) for k in keys)
    while depth > 1 and len({_module_pattern(k, depth) for k in keys}) > MAX_MODULE_GROUPS:
        depth -= 1
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    instances: dict[str, set[str]] = defaultdict(set)
    for k, layer in zip(keys, layers, strict=True):
        group = _module_pattern(k, depth)
        totals[group][str(layer.get("dtype"))] += float(layer.get("bytes") or 0)
        instances[group].add(".".join(k.split(".")[:-1][:depth]))
    order = sorted(totals, key=lambda g: -sum(totals[g].values()))[:MAX_MODULE_GROUPS]
    labels = [g + (f" (x{len(instances[g])})" if len(instances[g]) > 1 else "") for g in order]
    dtypes = sorted({d for g in order for d in totals[g]}, key=lambda d: -sum(totals[g][d] for g in order))
    return labels, {d: [totals[g][d] for g in order] for d in dtypes}


def _ratio(num: Any, den: Any) -> float | None:
    return num / den if isinstance(num, (int, float)) and isinstance(den, (int, float)) and den else None


def _checkpoint(path: str, report: Report, arts: Mapping[str, Mapping[str, Mapping[str, Any]]],
                findings: Sequence[Finding], idx: int) -> str:
    base = arts["checkpoint"].get(path, {})
    layout = arts["checkpoint-layout"].get(path, {})
    stats = arts["checkpoint-stats"].get(path, {})
    memory = arts["checkpoint-memory"].get(path, {})
    aid = anchor("ckpt", str(idx))
    out = [f'<section class="checkpoint" id="{aid}" data-path="{esc(path)}"><h3>{esc(path)}</h3>']
    facts = [("format", base.get("format")), ("verdict", base.get("verdict")),
             ("file size", fmt_bytes(base.get("size_bytes"))), ("tensors", fmt_num(base.get("tensors"))),
             ("model parameters", fmt_num(layout.get("parameters"))),
             ("trainable", fmt_num(layout.get("trainable")))]
    for section, n in (layout.get("bytes") or {}).items():
        facts.append((f"{section} bytes", fmt_bytes(n)))
    for prec, n in (memory.get("inference_bytes") or {}).items():
        facts.append((f"inference weights in {prec}", fmt_bytes(n)))
    if memory.get("training_total_bytes") is not None:
        facts.append(("training memory (weights, grads, optimizer)",
                      fmt_bytes(memory["training_total_bytes"])))
    out.append(table(["fact", "value"], (f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>"
                                         for k, v in facts if v not in (None, "–")), css="facts"))
    layers = list(stats.get("layers") or [])
    if not layers:
        out.append('<p class="note">No per-tensor statistics for this file (not loaded: see its '
                   "findings).</p></section>")
        return "".join(out)
    flagged: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        if f.location.path == path and f.location.pointer:
            flagged[f.location.pointer].append(f.code)
    mods, series = _module_groups(layers)
    svg = charts.hbar(f"Memory by module and dtype: {path.rsplit('/', 1)[-1]}", mods, series,
                      xlabel="bytes stored", legend=True, units="bytes")
    out.append(figure(svg, "Stored bytes of the model's tensors by module (block indices merged as *, "
                      "xN: how many modules), one colour per dtype; largest first.",
                      f"{aid}-memory"))
    names = [str(layer["name"]) for layer in layers]
    flags = [bool(flagged.get(n)) for n in names]
    dead = [_ratio(layer.get("dead_rows"), layer.get("rows")) for layer in layers]
    nonfinite = [float((layer.get("nan") or 0) + (layer.get("inf") or 0)) for layer in layers]
    metrics = [("L2 norm", [layer.get("norm") for layer in layers]),
               ("std (spread)", [layer.get("std") for layer in layers]),
               ("zero fraction", [layer.get("zero_fraction") for layer in layers]),
               ("dead-unit fraction", dead),
               ("NaN + Inf count", nonfinite)]
    # A metric that is 0 in every tensor gets a sentence, not an empty panel.
    panels = [(label, values, flags) for label, values in metrics if any(v for v in values)]
    quiet = [label for label, values in metrics if not any(v for v in values)]
    svg = charts.layer_panels(f"Weight health per tensor: {path.rsplit('/', 1)[-1]}", names, panels,
                              log=("L2 norm", "std (spread)"))
    note = f" 0 in every tensor, so not drawn: {', '.join(quiet)}." if quiet else ""
    out.append(figure(svg, "Dead units are all-zero rows (output units) of 2-D and larger tensors; "
                      f"circled dots mark tensors a rule flagged.{note}", f"{aid}-health"))
    grads = [(n, layer["grad_norm"]) for n, layer in zip(names, layers, strict=True)
             if layer.get("grad_norm") is not None]
    if grads:
        svg = charts.hbar(f"Adam-estimated gradient norm per tensor: {path.rsplit('/', 1)[-1]}",
                          [g[0] for g in grads], {"gradient norm": [g[1] for g in grads]},
                          xlabel="sqrt(sum of bias-corrected exp_avg_sq)",
                          log=max(g[1] for g in grads) > 30 * max(min(g[1] for g in grads), 1e-30),
                          marks=["flagged" if flagged.get(g[0]) else "" for g in grads])
        out.append(figure(svg, "Estimated from the optimizer's second moments (RMS over recent steps), "
                          "not measured on data.", f"{aid}-grads"))
    rows = []
    for layer, _d in zip(layers, dead, strict=True):
        codes = ", ".join(flagged.get(str(layer["name"]), []))
        rows.append(
            f'<tr data-layer="{esc(layer["name"])}"><td><code>{esc(layer["name"])}</code></td>'
            f"<td>{esc(layer.get('dtype'))}</td><td>{esc('x'.join(map(str, layer.get('shape') or [])))}</td>"
            + cell(layer.get("bytes"), num=True) + cell(layer.get("norm"), num=True)
            + cell(layer.get("std"), num=True) + cell(layer.get("zero_fraction"), num=True)
            + cell(layer.get("dead_rows"), num=True) + cell(layer.get("nan"), num=True)
            + cell(layer.get("inf"), num=True) + cell(layer.get("grad_norm"), num=True)
            + f'<td class="flag">{esc(codes)}</td></tr>')
    out.append(f"<details><summary>Per-tensor numbers ({len(layers)} tensors)</summary>"
               + table(["tensor", "dtype", "shape", "bytes", "L2 norm", "std", "zero fraction",
                        "dead units", "NaN", "Inf", "grad norm (est.)", "flagged by"], rows,
                       num_cols=range(3, 11), table_id=f"{aid}-layers", sortable=True)
               + "</details></section>")
    return "".join(out)


def _config(art: ArtifactSummary, findings: Sequence[Finding], idx: int) -> str:
    lines: Mapping[str, str] = art.details.get("lines") or {}
    by_line: dict[int, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.location.path == art.path and f.location.line is not None:
            by_line[f.location.line].append(f)
    out = [f'<section class="config" id="{anchor("cfg", str(idx))}"><h3>{esc(art.path)}</h3>']
    body, previous = [], None
    for number in sorted(int(n) for n in lines):
        if previous is not None and number > previous + 1:
            body.append('<span class="ln"><span class="lno">…</span></span>')
        hits = by_line.get(number, [])
        cls = "ln hit" if hits else "ln"
        body.append(f'<span class="{cls}" data-line="{number}"><span class="lno">{number}</span>'
                    f"{esc(lines[str(number)])}</span>")
        body += [f'<span class="ln msg"><span class="lno"></span>↑ <b>{esc(f.code)}</b> '
                 f"{esc(f.message)}</span>" for f in hits]
        previous = number
    out.append(f'<pre class="excerpt">{"".join(body)}</pre>')
    keyless = [f for f in findings if f.location.path == art.path and f.location.line is None]
    if keyless:
        out.append("<p>Findings about settings that are not written in the file:</p><ul>"
                   + "".join(f"<li><b>{esc(f.code)}</b> <code>{esc(f.location.pointer or '')}</code>: "
                             f"{esc(f.message)}</li>" for f in keyless) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _float(v: Any) -> float:
    """A JSON number, or the "nan"/"inf" strings the JSON writer uses, as a float."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _histories(findings: Sequence[Finding]) -> str:
    """Per run history with findings: each flagged curve, the finding steps marked on it. The
    curves come from the findings' evidence (downsampled, the marked steps kept), so a history
    without findings has none to draw."""
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if isinstance(f.evidence.get("curve"), Mapping):
            by_path[f.location.path].append(f)
    if not by_path:
        return ""
    out = ['<section id="histories"><h2>Training-run histories</h2><p class="note">Each curve a finding '
           "is about, with the steps it points at marked; histories without findings are not drawn "
           "(the report carries curves only as evidence).</p>"]
    for i, (path, found) in enumerate(sorted(by_path.items())):
        out.append(f'<section class="history" id="{anchor("hist", str(i))}" data-path="{esc(path)}">'
                   f"<h3>{esc(path)}</h3>")
        by_series: dict[str, list[Finding]] = defaultdict(list)
        for f in found:
            by_series[str(f.evidence["curve"].get("series"))].append(f)
        for j, (series, fs) in enumerate(sorted(by_series.items())):
            curve = fs[0].evidence["curve"]
            xs = [float(s) for s in curve.get("steps") or []]
            ys = [_float(v) for v in curve.get("values") or []]
            marks: list[tuple[float, str]] = []
            for f in fs:  # the finding's own step carries its code; its other marks are fainter
                step = f.evidence.get("step")
                steps = [s for s in (f.evidence.get("marks") or [step]) if s is not None]
                labelled = step if step in steps else (steps[0] if steps else None)
                marks += [(float(s), f.code if s == labelled else "") for s in steps]
            finite = [y for y in ys if math.isfinite(y)]
            log = bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100
            svg = charts.line_chart(f"{series}: {path.rsplit('/', 1)[-1]}", {series: (xs, ys)},
                                    xlabel="step", ylabel=series, marks=marks, log=log)
            out.append(figure(svg, f"{len(xs)} of {curve.get('points', len(xs))} logged points drawn; dashed "
                              "lines: the steps the findings point at.", f"hist-{i}-{j}"))
        rows = [f'<tr data-code="{esc(f.code)}"><td><b>{esc(f.code)}</b></td>'
                f"<td><code>{esc(f.location.pointer or '')}</code></td>"
                + cell(f.evidence.get("step"), num=True) + f"<td>{esc(f.message)}</td></tr>" for f in found]
        out.append(table(["rule", "series", "step", "message"], rows, num_cols=(2,),
                         table_id=f"{anchor('hist', str(i))}-findings"))
        out.append("</section>")
    out.append("</section>")
    return "".join(out)


def render(report: Report, out: IO[str], *, show_baselined: bool = True, **_: Any) -> None:
    """Write the HTML report (baselined findings are shown, marked, unless hidden)."""
    findings = [f for f in report.findings if show_baselined or not f.baselined]
    arts: dict[str, dict[str, Mapping[str, Any]]] = {
        k: _details(report, k) for k in ("checkpoint", "checkpoint-layout", "checkpoint-stats",
                                         "checkpoint-memory")}
    counts = report.counts()
    subtitle = (f"mlaudit {esc(report.tool_version)} · {esc(', '.join(report.roots))} · "
                f"{counts['error']} errors, {counts['warning']} warnings, {counts['info']} info · "
                f"{report.files_scanned} files in {report.duration_s:.2f} s")
    nav = [("summary", "Summary"), ("findings", "Findings")]
    body = [_summary(report, findings), _findings_table(findings)]
    ckpts = list(dict.fromkeys(a.path for a in report.artifacts if a.kind == "checkpoint"))
    if ckpts:
        nav.append(("checkpoints", "Checkpoints"))
        body.append('<section id="checkpoints"><h2>Checkpoints</h2>'
                    + "".join(_checkpoint(p, report, arts, findings, i) for i, p in enumerate(ckpts))
                    + "</section>")
    excerpts = [a for a in report.artifacts if a.kind == "config-excerpt"]
    if excerpts:
        nav.append(("configs", "Configs"))
        body.append('<section id="configs"><h2>Training configs: flagged lines</h2>'
                    + "".join(_config(a, findings, i) for i, a in enumerate(excerpts)) + "</section>")
    histories = _histories(findings)
    if histories:
        nav.append(("histories", "Histories"))
        body.append(histories)
    codes = sorted({f.code for f in findings})
    if codes:
        nav.append(("rules", "Rules"))
        body.append(_rule_docs(codes, load_catalog()))
    if report.notes:
        body.append('<section id="notes"><h2>Notes</h2><ul>'
                    + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul></section>")
    out.write(page("mlaudit scan report", subtitle, nav, body))
