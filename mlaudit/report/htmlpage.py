"""The page shell shared by the HTML scan and fix reports: one self-contained document.

Everything is inline (CSS, a few lines of script, SVG charts): no CDN, no font, no image
fetched, so the file opens offline from a CI artifact or a mail attachment. A
Content-Security-Policy of `default-src 'none'` makes the browser refuse any request the
page might still try. The script only sorts and filters tables; without it (or on paper)
every table and chart is complete.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fg:#1b1b1b; --muted:#5a5a5a; --line:#d8d8d8; --bg-alt:#f5f6f8; --accent:#0072B2;
  --error:#b33c00; --warning:#8a5a00; --info:#0060a0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
  margin: 0 auto; max-width: 1100px; padding: 16px 24px 48px; }
h1 { font-size: 1.6em; margin: .2em 0 .1em; } h2 { font-size: 1.3em; margin-top: 1.8em;
  border-bottom: 2px solid var(--line); padding-bottom: .2em; } h3 { font-size: 1.08em; margin-top: 1.4em; }
.meta { color: var(--muted); margin: 0 0 1em; }
nav ul { display: flex; flex-wrap: wrap; gap: .3em 1.2em; padding: 0; list-style: none; margin: .6em 0; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; font-size: .92em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); position: sticky; top: 0; }
table.facts { width: auto; min-width: 420px; }
td code { overflow-wrap: anywhere; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
.sev { font-weight: 600; } .sev-error { color: var(--error); } .sev-warning { color: var(--warning); }
.sev-info { color: var(--info); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: .6em 0 1em; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .n { font-size: 1.6em; font-weight: 700; display: block; }
figure.chart { margin: .6em 0 1.2em; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
/* the SVG text was laid out with DejaVu Sans metrics; Verdana is the closest common face */
figure.chart svg text { font-family: "DejaVu Sans", "Bitstream Vera Sans", Verdana, Arial,
  sans-serif !important; }
figure.chart figcaption { color: var(--muted); font-size: .9em; }
.filters { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin: .4em 0; }
.filters input[type=search] { min-width: 260px; padding: 4px 6px; }
details { margin: .4em 0; } summary { cursor: pointer; color: var(--accent); }
details.rule { border-left: 3px solid var(--line); padding: 2px 10px; }
pre { background: var(--bg-alt); padding: 8px; overflow-x: auto; font-size: .88em; }
pre.excerpt { padding: 0; white-space: pre-wrap; } pre.excerpt span.ln { display: block; padding: 0 8px; }
pre.excerpt span.msg { color: var(--error); font-family: system-ui, sans-serif; padding-left: 4em; }
pre.excerpt span.hit { background: #ffe9c7; border-left: 3px solid var(--error); }
pre.excerpt span.lno { color: var(--muted); display: inline-block; min-width: 3em; }
.note { color: var(--muted); font-style: italic; }
.flag { color: var(--error); font-weight: 600; }
code { font-size: .92em; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, .filters, .noprint { display: none; }
  th { position: static; } a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; } tr { break-inside: avoid; }
}
"""

# Sorting compares the cell's data-v (a number) when present, else its text; filtering
# hides rows whose text lacks the query or whose severity is not chosen.
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(r) { var c = r.cells[col], v = c.getAttribute('data-v');
        return v !== null ? parseFloat(v) : c.textContent.trim().toLowerCase(); }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('.filters').forEach(function (box) {
  var table = document.getElementById(box.getAttribute('data-for'));
  var text = box.querySelector('input[type=search]');
  var checks = box.querySelectorAll('input[type=checkbox]');
  var count = box.querySelector('.shown');
  function apply() {
    var q = text.value.trim().toLowerCase(), on = {}, shown = 0;
    checks.forEach(function (c) { on[c.value] = c.checked; });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0)
        && on[r.getAttribute('data-sev')] !== false;
      r.hidden = !ok; if (ok) shown++;
    });
    if (count) count.textContent = shown;
  }
  text.addEventListener('input', apply);
  checks.forEach(function (c) { c.addEventListener('change', apply); });
});
function openTarget() {
  var t = location.hash && document.getElementById(location.hash.slice(1));
  if (t && t.tagName === 'DETAILS') t.open = true;
}
window.addEventListener('hashchange', openTarget);
openTarget();
window.addEventListener('beforeprint', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
});
"""


def esc(value: Any) -> str:
    """Text escaped for HTML element content and attribute values."""
    return html.escape(str(value), quote=True)


def anchor(*parts: str) -> str:
    """An id usable in a URL fragment, stable for the same parts."""
    text = "-".join(parts)
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def fmt_num(value: Any, digits: int = 4) -> str:
    """A number as shown in tables (and compared with the JSON by the browser test)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        return f"{value:.{digits}g}"
    return str(value)


def fmt_bytes(n: float | int | None) -> str:
    """Bytes in decimal units (kB, MB, GB), three significant digits."""
    if n is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def cell(value: Any, *, num: bool = False, text: str | None = None, cls: str = "") -> str:
    """One <td>; numeric cells carry data-v (the raw number) for sorting and for the test."""
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attrs = f' class="{classes}"' if classes else ""
    if num and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        attrs += f' data-v="{float(value)!r}"'
    shown = text if text is not None else (fmt_num(value) if num else esc(value))
    return f"<td{attrs}>{shown}</td>"


def table(headers: Sequence[str], rows: Iterable[str], *, num_cols: Sequence[int] = (),
          table_id: str | None = None, sortable: bool = False, caption: str | None = None,
          css: str = "") -> str:
    """A table from pre-rendered `<tr>` rows."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in num_cols else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    classes = " ".join(c for c in ("sortable" if sortable else "", css) if c)
    attrs = (f' id="{table_id}"' if table_id else "") + (f' class="{classes}"' if classes else "")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table{attrs}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure(svg: str, caption: str, chart_id: str) -> str:
    """A chart with its caption; `data-chart` lets the browser test find and measure it."""
    return (f'<figure class="chart" id="{chart_id}" data-chart="{chart_id}">{svg}'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: Sequence[str]) -> str:
    """The whole document."""
    links = "".join(f'<li><a href="#{esc(a)}">{esc(t)}</a></li>' for a, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="mlaudit">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">{subtitle}</p>"
        f"<nav><ul>{links}</ul></nav></header><main>{''.join(body)}</main>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )
