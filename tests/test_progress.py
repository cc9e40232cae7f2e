"""The progress display: drawn on a terminal after the delay, never otherwise."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from mlaudit import progress as prog


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _console() -> tuple[Console, io.StringIO]:
    buf = _Tty()
    return Console(file=buf, force_terminal=True, width=100), buf


def test_drawn_after_delay_with_counts_and_sub_steps():
    console, buf = _console()
    with prog.progress("scan", total=3, unit="files", delay_s=0.0, console=console) as bar:
        bar.advance(label="a.pt")
        assert bar.shown
        with bar.sub("int8", total=4) as layers:
            layers.advance(label="layer 1 of 4")
            assert layers.shown
        bar.advance(2)
    out = buf.getvalue()
    assert "scan (1/3 files): a.pt" in out
    assert "layer 1 of 4" in out


def test_nothing_drawn_before_the_delay():
    console, buf = _console()
    with prog.progress("scan", total=2, unit="files", delay_s=60.0, console=console) as bar:
        bar.advance()
        bar.step("export")
        with bar.sub("int8", total=2) as layers:
            layers.advance()
            assert not layers.shown
        assert not bar.shown
    assert buf.getvalue() == ""


def test_disabled_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MLAUDIT_NO_PROGRESS", raising=False)
    assert not prog.enabled(io.StringIO())
    with prog.progress("scan", total=1, delay_s=0.0) as bar:  # capsys: stderr is no terminal
        bar.advance()
        assert not bar.shown
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("env", [{"CI": "true"}, {"MLAUDIT_NO_PROGRESS": "1"}, {"TERM": "dumb"}])
def test_disabled_in_ci_or_when_asked(monkeypatch, env):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("MLAUDIT_NO_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert prog.enabled(_Tty())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert not prog.enabled(_Tty())


def test_nested_progress_becomes_a_sub_line():
    console, buf = _console()
    with prog.progress("fix", delay_s=0.0, console=console) as outer:
        outer.step("int8")
        with prog.progress("layers", total=2, unit="layers") as inner:
            inner.advance(label="fc1")
            assert inner.shown and inner._parent is outer
        outer.step("timing")
    assert "layers (1/2 layers): fc1" in buf.getvalue()
    assert prog._active is None


def test_a_scan_shows_files_done_on_a_terminal_and_keeps_stdout_clean(monkeypatch, run_cli):
    from tests.casekit import ROOT

    project = ROOT / "fixtures" / "build" / "sample_project"
    if not project.is_dir():
        pytest.skip("fixtures not generated")
    console, buf = _console()
    monkeypatch.setattr(prog, "enabled", lambda stream=None: True)
    monkeypatch.setattr(prog, "_stderr_console", lambda: console)
    monkeypatch.setattr(prog, "DELAY_S", 0.0)
    code, out, err = run_cli("scan", project, "--isolated", "--format", "json", "--exit-zero")
    assert code == 0
    n = json.loads(out)["summary"]["files_scanned"]  # stdout stays machine-readable
    assert f"/{n} files)" in buf.getvalue() and "scan " in buf.getvalue()


def test_fix_steps_show_on_a_terminal_and_fixers_can_add_sub_steps(monkeypatch, run_cli, tmp_path):
    pytest.importorskip("torch")
    import shutil

    from tests.fixhelp import FAST, TRAINED

    if not (TRAINED / "mlp.pt").exists():
        pytest.skip("fixtures not generated")
    src = tmp_path / "mlp.pt"
    shutil.copyfile(TRAINED / "mlp.pt", src)
    console, buf = _console()
    monkeypatch.setattr(prog, "enabled", lambda stream=None: True)
    monkeypatch.setattr(prog, "_stderr_console", lambda: console)
    monkeypatch.setattr(prog, "DELAY_S", 0.0)
    from mlaudit.fixers import runner

    real = runner.run_fix

    def with_sub_steps(*args, **kwargs):  # what a fixer does for its sub-steps
        with prog.progress("int8", total=3, unit="layers") as layers:
            layers.advance(label="layer 1 of 3")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_fix", with_sub_steps)
    code, out, err = run_cli("fix", src, *FAST)
    assert code == 0, err
    assert "safetensors" in out  # the step lines still reach stdout
    drawn = buf.getvalue()
    assert "fix mlp.pt" in drawn and "layer 1 of 3" in drawn
