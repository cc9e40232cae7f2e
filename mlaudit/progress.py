"""Progress on long work, for a person watching a terminal and for nobody else.

One context manager, `progress(...)`, yields a `Tracker`. Work reports through it
(`advance`, `step`, `sub`); the tracker draws a rich progress display on stderr only when

- stderr is a terminal (never in a pipe, a file, machine outputs or CI logs),
- no CI is detected (`CI` set: GitHub Actions, GitLab, most others), `TERM` is not `dumb`
  and `MLAUDIT_NO_PROGRESS` is unset, and
- the work has already taken longer than `delay_s` (a scan that ends in 0.3 s draws nothing).

Otherwise every call is a cheap no-op, so callers never test whether progress is shown.
Drawing is transient: the bar disappears when the work ends, leaving stderr as it was.

Usage::

    with progress("scan", total=len(files), unit="files") as bar:
        for f in files:
            ...
            bar.advance()

    with progress("int8") as bar:               # a fix step with sub-steps
        bar.step("export")                      # a named phase
        with bar.sub("layer", total=n) as layers:
            for i, layer in enumerate(todo):
                layers.advance(label=f"layer {i + 1} of {n}: {layer}")
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

DELAY_S = 1.0  # "scans longer than about a second" (issue 13)


def enabled(stream: TextIO | None = None) -> bool:
    """Whether a progress display may be drawn on `stream` (default: sys.stderr)."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get("MLAUDIT_NO_PROGRESS") or os.environ.get("CI"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Tracker:
    """Counts work done; draws it once the work has run for `delay_s` (see module doc)."""

    def __init__(self, description: str, total: int | None, unit: str, delay_s: float,
                 console: Any | None, parent: Tracker | None = None) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.completed = 0
        self.label = ""
        self._delay_s = delay_s
        self._console = console  # a rich Console, or None when nothing may be drawn
        self._parent = parent
        self._started = time.monotonic()
        self._progress: Any | None = parent._progress if parent else None
        self._task: Any | None = None

    @property
    def shown(self) -> bool:
        """True once the display is on screen."""
        return self._task is not None

    def advance(self, n: int = 1, label: str | None = None) -> None:
        """`n` more units done; `label` names what is being worked on now."""
        self.completed += n
        if label is not None:
            self.label = label
        self._refresh()

    def step(self, label: str) -> None:
        """A named phase of the work started (e.g. "export", "timing")."""
        self.label = label
        self._refresh()

    def set_total(self, total: int | None) -> None:
        """The amount of work became known (or changed)."""
        self.total = total
        self._refresh()

    @contextmanager
    def sub(self, description: str, total: int | None = None, unit: str = "") -> Iterator[Tracker]:
        """A nested line for the sub-steps of the current step (e.g. int8 layer i of N)."""
        child = Tracker(description, total, unit, 0.0, self._console, parent=self)
        try:
            yield child
        finally:
            child._close()

    def _root(self) -> Tracker:
        return self if self._parent is None else self._parent._root()

    def _refresh(self) -> None:
        if self._console is None:
            return
        root = self._root()
        if root._progress is None:
            if time.monotonic() - root._started < root._delay_s:
                return
            root._open()
        self._progress = progress = root._progress
        assert progress is not None, "root._open() creates the shared display"
        if self._task is None:
            if self._parent is not None and self._parent._task is None:
                self._parent._refresh()
            self._task = progress.add_task(self._text(), total=self.total)
        progress.update(self._task, completed=self.completed, total=self.total,
                              description=self._text())

    def _text(self) -> str:
        indent = "  " if self._parent is not None else ""
        counted = ""
        if self.total is not None and self.unit:
            counted = f" ({self.completed}/{self.total} {self.unit})"
        label = f": {self.label}" if self.label else ""
        return f"{indent}{self.description}{counted}{label}"

    def _open(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TimeElapsedColumn(), console=self._console, transient=True)
        self._progress.start()

    def _close(self) -> None:
        if self._parent is not None:
            if self._task is not None and self._progress is not None:
                self._progress.remove_task(self._task)
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def progress(description: str, total: int | None = None, *, unit: str = "",
             delay_s: float | None = None, console: Any | None = None) -> Iterator[Tracker]:
    """Track long work (see the module doc). `console` (a rich Console) forces drawing there,
    for tests; by default a stderr console is used only when `enabled()`. Called while
    another `progress` is open (a fix step inside the fix, a file's statistics inside the
    scan), it opens a sub-line of that one instead."""
    global _active
    if _active is not None:  # rich draws one live display at a time: nest under the open one
        with _active.sub(description, total, unit) as child:
            yield child
        return
    if console is None and enabled():
        console = _stderr_console()
    tracker = Tracker(description, total, unit, DELAY_S if delay_s is None else delay_s, console)
    _active = tracker
    try:
        yield tracker
    finally:
        _active = None
        tracker._close()


_active: Tracker | None = None  # the outermost open tracker of this process


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
