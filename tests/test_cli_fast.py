"""The typer-free `scan` parser (mlaudit/cli_scan.py) must hand the scan exactly what typer
would, and leave everything it does not take as plain to typer (help, usage errors)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from mlaudit import cli_scan
from mlaudit.cli import main
from mlaudit.cli_app import app

KINDS = {"STRING": "str", "BOOLEAN": "flag", "INTEGER RANGE": "int", "INT RANGE": "int"}


def _typer_scan() -> typer.core.TyperCommand:
    return typer.main.get_command(app).commands["scan"]


def _kind(param) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    name = getattr(param.type, "name", "")
    is_path = name in ("path", "Path") or "Path" in type(param.type).__name__
    base = "path" if is_path else KINDS.get(name.upper(), name)
    return base + "+" if getattr(param, "multiple", False) else base


def test_option_table_equals_typers_declaration():
    ours = dict(cli_scan.SCAN_OPTIONS)
    theirs = {}
    for param in _typer_scan().params:
        if param.param_type_name == "argument":
            assert param.name == "paths" and param.nargs == -1
            continue
        assert not param.secondary_opts, param.name  # a --no-x form would need a table entry
        for opt in param.opts:
            theirs[opt] = (param.name, _kind(param))
    assert ours == theirs
    jobs = next(p for p in _typer_scan().params if p.name == "jobs")
    assert jobs.type.min == 1 and jobs.type.max is None  # the fast parser's int check


def _typer_values(argv: list[str], monkeypatch) -> dict:
    captured: dict = {}

    def fake_run_scan(**kwargs):
        captured.update(kwargs)
        return 0

    monkeypatch.setattr(cli_scan, "run_scan", fake_run_scan)
    app(args=argv, prog_name="mlaudit", standalone_mode=False)
    return captured


PLAIN = [
    ["scan"],
    ["scan", "."],
    ["scan", "a", "b/c.pt", "-q"],
    ["scan", "models", "--isolated", "--exit-zero", "-q"],
    ["scan", "--select", "MLS,MLC", "--select", "MLA", "x", "--ignore=MLC001", "--extend-select", "MLQ"],
    ["scan", "--format", "json", "--output", "sarif=out.sarif", "--output", "-", "p"],
    ["scan", "--fail-on", "warning", "--config", "cfg.yaml", "--settings", "pyproject.toml"],
    ["scan", "--run-model", "--spectral", "--ignore-suppressions", "--exclude", "build/*", "--exclude=x"],
    ["scan", "--baseline", "b.json", "--update-baseline", "--show-baselined", "--diff-base", "main"],
    ["scan", "--write-baseline=b.json", "--statistics", "--quiet", "--verbose", "-v"],
    ["scan", "-j", "3", "--cache", ".cache/x", "p q"],
    ["scan", "--jobs=12", "a b", "--format=text"],
    ["scan", "--output", "-"],
    ["scan", "s3://bucket/prefix", "hf://org/model", "--format", "jsonl"],
    ["scan", "--executor", "ray", "--ray-address=auto", "."],
]


@pytest.mark.parametrize("argv", PLAIN, ids=lambda a: " ".join(a))
def test_plain_argument_lists_parse_as_typer_parses_them(argv, monkeypatch):
    ours = cli_scan.parse_scan_args(argv)
    assert ours is not None, argv
    theirs = _typer_values(argv, monkeypatch)
    assert ours == theirs
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    if ours["paths"]:
        assert all(isinstance(p, str) for p in ours["paths"])


LEFT_TO_TYPER = [
    [], ["--version"], ["--help"], ["rules"], ["scan", "--help"], ["scan", "-h"], ["scan", "--bogus"],
    ["scan", "--sel", "MLS"], ["scan", "-qv"], ["scan", "-j2"], ["scan", "-j", "0"], ["scan", "-j", "x"],
    ["scan", "-j", "+3"], ["scan", "--jobs"], ["scan", "--select"], ["scan", "--select", "-q"],
    ["scan", "--exit-zero=true"], ["scan", "--fail-on", "error", "--fail-on", "info"], ["scan", "--", "-x"],
    ["scan", "-"], ["scan", ""], ["scan", "--config="], ["scan", "-q=1"], ["scan", "--no-isolated"],
    ["SCAN"], ["fix", "x.pt"],
]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda a: " ".join(a) or "(none)")
def test_anything_unusual_is_left_to_typer(argv):
    assert cli_scan.parse_scan_args(argv) is None


def test_shell_completion_variable_leaves_it_to_typer(monkeypatch):
    monkeypatch.setenv("_MLAUDIT_COMPLETE", "bash_source")
    assert cli_scan.parse_scan_args(["scan"]) is None


def test_usage_errors_still_come_from_typer(run_cli, tmp_path):
    code, _, err = run_cli("scan", "-j", "0", cwd=tmp_path)
    assert code == 2 and "mlaudit: error:" in err and "--jobs" in err and err.count("\n") == 1


def test_plain_scan_imports_neither_typer_nor_rich(tmp_path):
    (tmp_path / "w.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                                     b"'shape': (2,), }" + b" " * 58 + b"\n" + b"\x00" * 8)
    probe = (
        "import sys; from mlaudit.cli import main\n"
        f"code = main(['scan', {str(tmp_path)!r}, '--isolated', '-q'])\n"
        "print(code, 'imported=' + ','.join(m for m in ('typer', 'click', 'rich') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("Found ") and lines[-1] in ("0 imported=", "1 imported=")


@pytest.mark.parametrize("extra", [["-q"], [], ["--format", "json"], ["--statistics", "-q"]])
def test_fast_and_typer_paths_print_the_same(extra, tmp_path, monkeypatch, capsys):
    (tmp_path / "bad.pt").write_bytes(b"\x80\x04 truncated pickle")
    (tmp_path / "train.yaml").write_text("lr: 10.0\nseed: null\n")
    argv = ["scan", str(tmp_path), "--isolated", *extra]
    monkeypatch.setenv("COLUMNS", "100")
    outputs = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(cli_scan, "parse_scan_args", lambda _argv: None)
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        outputs.append((code, _no_timing(out), err))
    assert outputs[0] == outputs[1]


def _no_timing(text: str) -> str:
    import re

    text = re.sub(r"\(\d+\.\d\d s,", "(T s,", text)
    return re.sub(r'"duration_s": [0-9.e-]+', '"duration_s": T', text)


@pytest.mark.parametrize("terminal", [False, True])
def test_the_plain_summary_is_what_rich_prints(terminal):
    """`scan -q` prints the summary without rich: byte for byte what rich printed (on a
    terminal too, and narrower than the line: soft wrap)."""
    import io

    from rich.console import Console

    from mlaudit.model import Report
    from mlaudit.report.text import render, summary_line

    report = Report(tool_version="0", roots=("p",), findings=(), files_scanned=3, duration_s=0.25,
                    rules_run=("MLS001",) * 7, suppressed=2)
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, soft_wrap=True, force_terminal=terminal, width=20)
    render(report, buffer, console=console, quiet=True)
    assert buffer.getvalue() == summary_line(report) + "\n"
    assert "[" not in summary_line(report) and ":" not in summary_line(report)
