"""Open an HTML report in headless Chromium with every network request blocked.

Used by the browser tests and by `make bench`. Playwright drives Debian's `chromium` binary
(`executable_path`; no browser download). The page is loaded from a file:// URL; any
other request (http, https, ws, data fetched by script...) is recorded and aborted, and the
context is offline as well, so a report that tried to reach the network shows up both as a
recorded request and as a console error.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Per chart: the rendered box of its <svg>; per table cell with a raw number: the number.
PROBE = """() => {
  const charts = Array.from(document.querySelectorAll('[data-chart]')).map(f => {
    const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    const title = f.closest('section') ? (f.closest('section').querySelector('h2,h3') || {}).textContent : '';
    return {id: f.getAttribute('data-chart'), width: r.width, height: r.height,
            texts: svg ? svg.querySelectorAll('text').length : 0, heading: title || ''};
  });
  const tables = {};
  document.querySelectorAll('table[id]').forEach(t => {
    tables[t.id] = Array.from(t.tBodies[0].rows).map(r => ({
      attrs: Object.fromEntries(Array.from(r.attributes).map(a => [a.name, a.value])),
      cells: Array.from(r.cells).map(c => ({text: c.textContent.trim(), v: c.getAttribute('data-v')}))
    }));
  });
  const counts = {};
  document.querySelectorAll('[data-count]').forEach(
    e => counts[e.getAttribute('data-count')] = e.textContent.trim());
  return {charts, tables, counts, title: document.title,
          h1: (document.querySelector('h1') || {}).textContent || ''};
}"""


def chromium_path() -> str | None:
    """The system Chromium, or None when none is installed."""
    env = os.environ.get("MLAUDIT_CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageVisit:
    """What the browser saw while opening one report."""

    url: str
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every request except the document
    probe: dict[str, Any] = field(default_factory=dict)
    load_ms: float = 0.0  # navigation start -> load event, from the page's own timing
    wall_s: float = 0.0

    @property
    def errors(self) -> list[str]:
        return [t for k, t in self.console if k == "error"] + self.page_errors


def visit(path: Path, screenshot: Path | None = None, *, width: int = 1200) -> PageVisit:
    """Open `path` offline in headless Chromium; record console, requests, chart boxes."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no chromium binary found")
    url = path.resolve().as_uri()
    result = PageVisit(url)
    started = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True, viewport={"width": width, "height": 900})

            def block(route: Any) -> None:
                if route.request.url == url:
                    route.continue_()
                else:
                    result.requests.append(route.request.url)
                    route.abort()

            context.route("**/*", block)
            page = context.new_page()
            page.on("console", lambda m: result.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: result.page_errors.append(str(e)))
            page.goto(url, wait_until="load")
            result.load_ms = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n.loadEventEnd - n.startTime; }")
            result.probe = page.evaluate(PROBE)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    result.wall_s = time.perf_counter() - started
    return result
