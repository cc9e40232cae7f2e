"""The GitHub Action's scan step, run as the runner runs it (bash), with tricky `args` values:
quoted values with spaces survive as one argument; globs, variables and command substitution
are never expanded; an unsplittable value stops the step with exit code 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.casekit import ROOT

FAKE_MLAUDIT = """#!/usr/bin/env python3
import os, sys
with open(os.environ["ARGV_FILE"], "w") as fh:
    fh.write("\\0".join(sys.argv[1:]))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


def _scan_step() -> str:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    return next(s["run"] for s in action["runs"]["steps"] if s.get("id") == "scan")


def _run(tmp: Path, args: str, exit_code: int = 0) -> tuple[int, list[str] | None, str]:
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "mlaudit"
    fake.write_text(FAKE_MLAUDIT)
    fake.chmod(0o755)
    # `python` as setup-python provides it
    (bindir / "python").unlink(missing_ok=True)
    (bindir / "python").symlink_to(sys.executable)
    (tmp / "out").write_text("")
    argv_file = tmp / "argv"
    argv_file.unlink(missing_ok=True)
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "MLAUDIT_ARGS": args,
        "SARIF_FILE": "mlaudit.sarif", "RUNNER_TEMP": str(tmp), "GITHUB_OUTPUT": str(tmp / "out"),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary"), "ARGV_FILE": str(argv_file),
        "FAKE_EXIT": str(exit_code), "HOME": str(tmp),
    }
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    (work / "a.pt").write_text("")  # something a stray glob would match
    script = tmp / "step.sh"
    script.write_text(_scan_step())
    # how the runner runs a composite step with `shell: bash`
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=work,
                          env=env, capture_output=True, text=True)
    argv = argv_file.read_text().split("\0") if argv_file.exists() else None
    return proc.returncode, argv, (tmp / "out").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as the runner does")
def test_values_with_spaces_survive_and_nothing_is_expanded(tmp_path):
    tricky = """'models/my model.pt' --exclude "old runs/*" *.pt $HOME $(touch pwned) `id`"""
    code, argv, out = _run(tmp_path, tricky)
    assert code == 0
    assert argv[:9] == ["scan", "models/my model.pt", "--exclude", "old runs/*", "*.pt", "$HOME", "$(touch",
                        "pwned)", "`id`"]
    assert argv[9:] == ["--format", "github", "--output", "sarif=mlaudit.sarif", "--output",
                        f"markdown={tmp_path}/mlaudit-summary.md"]
    assert not (tmp_path / "work" / "pwned").exists()
    assert "exit-code=0" in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as the runner does")
def test_multiline_args_and_the_exit_code_is_reported(tmp_path):
    code, argv, out = _run(tmp_path, ".\n--baseline mlaudit-baseline.json\n", exit_code=1)
    assert code == 0 and argv[:4] == ["scan", ".", "--baseline", "mlaudit-baseline.json"]
    assert "exit-code=1" in out  # the Gate step, not this one, fails the job


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as the runner does")
def test_an_unbalanced_quote_stops_the_step(tmp_path):
    code, argv, out = _run(tmp_path, "'models/my model.pt")
    assert code == 2 and argv is None and "exit-code=2" in out
