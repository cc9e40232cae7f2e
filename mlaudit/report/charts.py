"""Static SVG charts for the HTML reports, drawn with matplotlib's SVG backend.

Why matplotlib: measured side by side with Vega-Altair + vl-convert (see docs/html-report.md),
it drew the same 500-point chart about 3x faster once imported (no JavaScript engine to start),
wrote SVG 2.4x smaller, and has no code path that could fetch anything. Only the object API
is used (Figure + FigureCanvasSVG, never pyplot), so nothing global is touched and several
reports can be drawn in one process. This module is imported only when an HTML report is
written: text, JSON and CI formats never pay for matplotlib.

Every function returns one `<svg>` element as text, ready to inline in HTML: the XML prolog
and metadata are removed, ids are unique per chart (charts share one HTML document), and text
stays text (`svg.fonttype: none`), so it is searchable, selectable and prints sharply.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Mapping, Sequence

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
SEVERITY_COLORS = {"error": "#D55E00", "warning": "#E69F00", "info": "#0072B2"}
FLAG_COLOR = "#D55E00"
WIDTH_IN = 8.0  # inches; CSS scales the SVG to the page width
NEEDLES_ABOVE = 60  # tensors per panel above which values are drawn as needles, not dots
_counter = itertools.count()
_RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: same metrics everywhere
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.formatter.use_mathtext": False,  # mathtext parsing was half the render time
    "axes.formatter.useoffset": False,  # "1e-5+9.999e-1" offsets misread as values
}


def _title(fig: Figure, title: str) -> None:
    """The chart title at the figure's top left (legends go top right, so they never collide)."""
    h = fig.get_size_inches()[1]
    fig.text(0.01, 1 - 0.08 / h, title, ha="left", va="top", fontsize=10, fontweight="bold")


def _plain_log(ax, axis: str = "y") -> None:
    """Log scale with plain tick labels (1e-05, 0.01, 100), no mathtext, no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(base=10, numticks=6))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def _margins(fig: Figure, *, left: float = 0.7, right: float = 0.25, top: float = 0.4,
             bottom: float = 0.5) -> None:
    """Fixed margins in inches: matplotlib's constrained layout measured every text twice
    and cost as much as drawing; label widths are known from their lengths."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=min(left / w, 0.6), right=1 - right / w, top=1 - top / h,
                        bottom=min(bottom / h, 0.45))


def _bytes_label(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


def _label_inches(labels: Sequence[str], size: float = 9) -> float:
    """Approximate width of the longest label in DejaVu Sans (0.6 em per character)."""
    return max((len(lb) for lb in labels), default=4) * size * 0.6 / 72 + 0.2


def _svg(fig: Figure) -> str:
    """The figure as an inline `<svg>` element with ids unique in the page."""
    buf = io.StringIO()
    salt = f"mlaudit-chart-{next(_counter)}"
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)


def _figure(height: float, width: float = WIDTH_IN) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height))


def _short(label: str, limit: int = 44) -> str:
    """Long tensor names are cut in the middle so both the module path and the leaf show."""
    if len(label) <= limit:
        return label
    keep = (limit - 1) // 2
    return label[:keep] + "…" + label[-keep:]


def hbar(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *,
         xlabel: str, colors: Mapping[str, str] | None = None, log: bool = False,
         marks: Sequence[str] | None = None, legend: bool | None = None, units: str = "") -> str:
    """Horizontal bars, one row per label, segments stacked per series (legend when >1).

    `marks` holds a short text per row drawn after its bar (for example "kept fp32").
    """
    with matplotlib.rc_context(_RC):
        fig = _figure(0.9 + 0.24 * max(len(labels), 1))
        ax = fig.add_subplot()
        y = range(len(labels))
        left = [0.0] * len(labels)
        for i, (name, values) in enumerate(series.items()):
            color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
            ax.barh(y, values, left=left, color=color, label=name, height=0.7)
            left = [a + b for a, b in zip(left, values, strict=True)]
        shown = [_short(lb) for lb in labels]
        ax.set_yticks(list(y), shown)
        _margins(fig, left=_label_inches(shown))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        _title(fig, title)
        ax.grid(axis="y", visible=False)
        if log:
            _plain_log(ax, "x")
        if units == "bytes":
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _bytes_label(v)))
        if marks:
            for row, text in enumerate(marks):
                if text:
                    ax.annotate(text, (left[row], row), xytext=(4, 0), textcoords="offset points",
                                va="center", fontsize=8, color=FLAG_COLOR, fontweight="bold")
            ax.margins(x=0.15)
        if legend or (legend is None and len(series) > 1):  # above the plot, right of the title
            fig.legend(*ax.get_legend_handles_labels(), fontsize=8, frameon=False, loc="upper right",
                       ncol=min(len(series), 4), borderaxespad=0.2)
        return _svg(fig)


def grouped_bars(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
                 ylabel: str, log: bool = False, ylim: tuple[float, float] | None = None,
                 value_format: str = "{:.3g}") -> str:
    """Vertical bars: one cluster per group (e.g. variant), one bar per series (e.g. metric).

    Missing values (None) leave a gap; every bar is labelled with its value so the chart
    reads without the table.
    """
    with matplotlib.rc_context(_RC):
        fig = _figure(3.0)
        ax = fig.add_subplot()
        n = max(len(series), 1)
        width = 0.8 / n
        for i, (name, values) in enumerate(series.items()):
            xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
            pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None and math.isfinite(v)]
            if not pts:
                continue
            bars = ax.bar([p[0] for p in pts], [p[1] for p in pts], width=width * 0.95,
                          color=PALETTE[i % len(PALETTE)], label=name)
            ax.bar_label(bars, labels=[value_format.format(p[1]) for p in pts], fontsize=7, padding=1)
        ax.set_xticks(range(len(groups)), [_short(g, 22) for g in groups])
        ax.set_ylabel(ylabel)
        _margins(fig, left=0.8)
        ax.set_title(title, loc="left")
        ax.grid(axis="x", visible=False)
        if log:
            _plain_log(ax)
        if ylim:
            ax.set_ylim(*ylim)
        else:
            ax.margins(y=0.12)
        if len(series) > 1:  # in one row above the plot, right of the title: never over a bar
            fig.legend(*ax.get_legend_handles_labels(), fontsize=8, frameon=False, loc="upper right",
                       ncol=len(series), borderaxespad=0.2)
        return _svg(fig)


def layer_panels(title: str, names: Sequence[str],
                 panels: Sequence[tuple[str, Sequence[float | None], Sequence[bool]]], *,
                 log: Sequence[str] = ()) -> str:
    """Small multiples over the tensors of one checkpoint, in file order: one panel per metric
    (label, values, flagged), sharing the x axis. Tensors are categories, so values are dots
    (needles above NEEDLES_ABOVE tensors), not a line; flagged tensors are circled in the alert
    colour, so a sick layer stands out among hundreds. Labels in `log` get a log axis when their
    values are positive and span more than 30x."""
    count = len(names)
    with matplotlib.rc_context(_RC):
        fig = _figure(0.6 + 1.1 * len(panels) + (0.5 if count <= 24 else 0))
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        _title(fig, title)
        xs = list(range(count))
        size = 4 if count <= 60 else 2
        for ax, (label, values, flagged) in zip(axes, panels, strict=True):
            pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None and math.isfinite(v)]
            low = min((p[1] for p in pts), default=0.0)
            # a log axis only where values span more than 30x; within a decade it shows one tick
            logged = label in log and low > 0 and max(p[1] for p in pts) / low > 30
            if pts and count > NEEDLES_ABOVE:
                # one <path> of vertical needles instead of a <use> element per dot: the SVG of a
                # 500-tensor panel drops from ~70 kB to ~15 kB and the page opens faster
                base = min(p[1] for p in pts) / 2 if logged else 0.0
                nx: list[float] = []
                ny: list[float] = []
                for x, v in pts:
                    nx += [x, x, math.nan]
                    ny += [base, v, math.nan]
                ax.plot(nx, ny, color=PALETTE[0], linewidth=0.8, solid_capstyle="butt")
            elif pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker="o",
                        markersize=size, color=PALETTE[0])
            bad = [(x, v if v is not None and math.isfinite(v) else 0.0)
                   for x, v, f in zip(xs, values, flagged, strict=True) if f]
            if bad:
                ax.plot([b[0] for b in bad], [b[1] for b in bad], linestyle="none", marker="o",
                        markersize=size + 3, markerfacecolor="none", markeredgewidth=1.4,
                        color=FLAG_COLOR, label="flagged by a rule")
            ax.set_ylabel(label, fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
            if logged:
                _plain_log(ax)
        axes[-1].set_xlabel("tensor index (file order; names in the table below)")
        bottom = 0.5
        if count <= 24:
            shown = [_short(n, 18) for n in names]
            axes[-1].set_xticks(xs, shown, rotation=30, ha="right", fontsize=7)
            bottom = 0.45 + _label_inches(shown, 7) * 0.5
        _margins(fig, left=0.9, top=0.45, bottom=bottom)
        if any(any(f) for _l, _v, f in panels):
            for ax in axes:
                handles, texts = ax.get_legend_handles_labels()
                if handles:
                    fig.legend(handles[:1], texts[:1], loc="upper right", fontsize=8, frameon=False)
                    break
        return _svg(fig)


def line_chart(title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
               xlabel: str, ylabel: str, marks: Sequence[tuple[float, str]] = (),
               log: bool = False) -> str:
    """Lines over a shared numeric x (e.g. training step), with vertical marks (x, label)."""
    with matplotlib.rc_context(_RC):
        fig = _figure(2.8)
        ax = fig.add_subplot()
        for i, (name, (xs, ys)) in enumerate(series.items()):
            ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], linewidth=1.0, label=name)
        for x, label in marks:  # a mark without a label is drawn fainter (later steps of a finding)
            ax.axvline(x, color=FLAG_COLOR, linewidth=0.8 if label else 0.5, linestyle="--" if label else ":")
            if label:
                ax.annotate(label, (x, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                            textcoords="offset points", va="top", fontsize=7, color=FLAG_COLOR,
                            fontweight="bold")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, loc="left")
        _margins(fig, left=0.8)
        if log:
            _plain_log(ax)
        if len(series) > 1:
            ax.legend(fontsize=8, frameon=False)
        return _svg(fig)
