"""Read back what an HTML report shows (stdlib parser): tables by id, charts, external refs.

The tests compare these against the JSON report, so a number drawn or printed differently
from the data fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Attributes that make a browser fetch something when they hold a URL.
FETCHING_ATTRS = ("src", "href", "action", "data", "poster", "srcset", "background", "formaction")


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[tuple[str, str | None]] = field(default_factory=list)  # (text, data-v)


@dataclass
class Page:
    tables: dict[str, list[Row]] = field(default_factory=dict)
    table_section: dict[str, str] = field(default_factory=dict)  # table id -> section data-path
    charts: dict[str, str] = field(default_factory=dict)  # data-chart id -> text inside its <svg>
    chart_svgs: dict[str, int] = field(default_factory=dict)  # data-chart id -> number of <svg>
    refs: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, attr, value)
    ids: set[str] = field(default_factory=set)
    counts: dict[str, str] = field(default_factory=dict)  # data-count -> text
    metas: list[dict[str, str]] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._table: str | None = None
        self._in_body = False
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._cell_v: str | None = None
        self._chart: str | None = None
        self._count: str | None = None
        self._section_paths: list[str | None] = []

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        for name in FETCHING_ATTRS:
            if name in attrs or f"xlink:{name}" in attrs:
                self.page.refs.append((tag, name, attrs.get(name) or attrs.get(f"xlink:{name}", "")))
        if "id" in attrs:
            self.page.ids.add(attrs["id"])
        if tag == "meta":
            self.page.metas.append(attrs)
        if tag == "section":
            self._section_paths.append(attrs.get("data-path"))
        if tag == "table" and attrs.get("id"):
            self._table = attrs["id"]
            self.page.tables[self._table] = []
            path = next((p for p in reversed(self._section_paths) if p), None)
            if path:
                self.page.table_section[self._table] = path
        if tag == "tbody" and self._table:
            self._in_body = True
        if tag == "tr" and self._in_body:
            self._row = Row(attrs)
        if tag in ("td", "th") and self._row is not None:
            self._cell, self._cell_v = [], attrs.get("data-v")
        if tag == "figure" and "data-chart" in attrs:
            self._chart = attrs["data-chart"]
            self.page.charts[self._chart] = ""
            self.page.chart_svgs[self._chart] = 0
        if tag == "svg" and self._chart:
            self.page.chart_svgs[self._chart] += 1
        if "data-count" in attrs:
            self._count = attrs["data-count"]
            self.page.counts[self._count] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._section_paths:
            self._section_paths.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.cells.append(("".join(self._cell).strip(), self._cell_v))
            self._cell = None
        if tag == "tr" and self._row is not None and self._table:
            self.page.tables[self._table].append(self._row)
            self._row = None
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._table = None
        if tag == "figure":
            self._chart = None
        if tag == "span":
            self._count = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._chart:
            self.page.charts[self._chart] += data
        if self._count:
            self.page.counts[self._count] += data


def parse(html: str) -> Page:
    """Tables, charts, ids and fetching references of an HTML document."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


def external_references(html: str) -> list[str]:
    """Everything in the document a browser could fetch from elsewhere: URL-valued attributes
    that are not in-page fragments, CSS url()/@import, and <link>/<iframe>/<object> elements."""
    page = parse(html)
    found = [f"<{t} {a}={v!r}>" for t, a, v in page.refs if not v.startswith("#")]
    found += re.findall(r"url\(\s*['\"]?(?!#)[^)'\"]+", html)
    found += re.findall(r"@import[^;]+", html)
    found += re.findall(r"<(?:link|iframe|object|embed)\b[^>]*>", html, flags=re.I)
    return found


def number(v: str | None) -> float | None:
    return None if v is None else float(v)
