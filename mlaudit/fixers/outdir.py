"""Where `mlaudit fix` may write, and what it may delete: only what an mlaudit fix wrote.

- Every working directory (`.<out>.partial-*` beside the output) gets a marker file first
  thing, naming the process that owns it; the marker travels with it into the output.
- `--force` replaces an existing output only when that directory carries the marker (or the
  fix-report.json of an earlier fix written for this very path), and never the current
  directory or one above it, a parent of the input, the home directory or `/`.
- Leftovers of a run killed with SIGKILL (no chance to clean up) are recognised by their
  marker and a dead owner, and removed by the next run for the same output.
- SIGTERM (what CI cancellation and `timeout` send) is only recorded by its handler; the
  runner calls `raise_if_terminated()` at safe points (between steps, before writing, before
  measuring, right before the output is moved into place), which raises `Terminated`, a
  KeyboardInterrupt, so the runner's clean-up runs exactly as on Ctrl-C. Raising from the
  handler itself was unsafe: the exception lands at any bytecode, inside an import (a
  half-imported numpy) or inside code that catches it (the fix went on and exited 0). A second
  SIGTERM while the first waits for a safe point kills at once (the default action); the next
  run removes what it left, like a SIGKILL's leftovers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mlaudit.fixers import FixError

MARKER = ".mlaudit-fix"
EXIT_TERMINATED = 143  # 128 + SIGTERM, what shells report for a terminated command


def _marker_of(directory: Path) -> dict | None:
    """The marker's content when `directory` holds an mlaudit fix marker, else None."""
    try:
        data = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "mlaudit" else None


def written_by_mlaudit(directory: Path) -> bool:
    """True when an earlier `mlaudit fix` wrote `directory` (marker, or its fix-report.json
    records this very directory as its output)."""
    if _marker_of(directory) is not None:
        return True
    try:
        report = json.loads((directory / "fix-report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(report, dict)
        and report.get("tool") == "mlaudit"
        and Path(str(report.get("output_dir", ""))).resolve() == directory.resolve()
    )


def check_out(out: Path, src: Path, force: bool) -> None:
    """Refuse an output directory whose replacement could destroy anything not written by mlaudit.

    `out` and `src` are resolved paths. Raises FixError with one line."""
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if out == Path(out.anchor) or out == home:
        what = "the filesystem root" if out == Path(out.anchor) else "the home directory"
        raise FixError(f"--out {out} is {what}; choose a new directory")
    if out == cwd or out in cwd.parents:
        raise FixError(f"--out {out} is the current directory or contains it; choose a new directory")
    if out in src.parents or out == src:
        raise FixError(f"--out {out} would contain or replace the input; choose a new directory")
    if out.exists() and force and out.is_dir() and not written_by_mlaudit(out):
        raise FixError(
            f"--force replaces only a directory an earlier `mlaudit fix` wrote; {out} has no mlaudit "
            "marker, so it is left alone (choose a new directory or remove it yourself)"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to judge
    return True


def sweep_leftovers(out: Path) -> list[Path]:
    """Remove `.<out>.partial-*` / `.<out>.old-*` directories left by killed runs: only those
    whose marker names a process on this host that no longer exists. Returns what was removed."""
    removed = []
    host = socket.gethostname()
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            if not leftover.is_dir() or leftover.is_symlink():
                continue
            marker = _marker_of(leftover)
            if marker is None:
                with contextlib.suppress(OSError):
                    leftover.rmdir()  # only when empty: killed between mkdtemp and the marker
                    removed.append(leftover)
                continue
            pid = marker.get("pid")
            if marker.get("host") != host or not isinstance(pid, int) or _alive(pid):
                continue
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def make_workdir(out: Path) -> Path:
    """A new `.<out>.partial-*` directory beside `out`, marked as this process's work."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    marker = {"tool": "mlaudit", "pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    (tmp / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return tmp


def unmark(out: Path) -> None:
    """Drop the work-in-progress marker from a finished output (its fix-report.json, which
    records this output directory, is what `--force` recognises from then on)."""
    with contextlib.suppress(OSError):
        (out / MARKER).unlink()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a fix: clean up like Ctrl-C, then exit 143."""


_received = threading.Event()  # set by the SIGTERM handler, read at the runner's safe points


def raise_if_terminated() -> None:
    """A safe point: raise `Terminated` when SIGTERM arrived while a fix was running."""
    if _received.is_set():
        raise Terminated()


def terminated() -> bool:
    """Whether SIGTERM arrived while `sigterm_as_interrupt` was active."""
    return _received.is_set()


def _record_sigterm(signum: int, frame: object) -> None:
    """The handler: record only (no exception may land mid-import); a second signal kills."""
    if _received.is_set():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    _received.set()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM is recorded and the fix ends as `Terminated`
    at the next safe point (`raise_if_terminated`), or, when it arrived after the last one,
    on leaving this block: whatever the moment, the caller sees `Terminated` (exit 143)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _record_sigterm)
    try:
        yield
    except Terminated:
        raise
    except Exception as err:
        # an error unwinding the fix after SIGTERM arrived (a step failing as the process is
        # being stopped) is still the termination the user asked for
        if _received.is_set():
            raise Terminated() from err
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if _received.is_set():
        raise Terminated()  # arrived after the last safe point: the work is done, still exit 143
