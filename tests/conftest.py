"""Shared test set-up: the generated fixture corpus is built once, before collection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config: pytest.Config) -> None:
    # Only the controlling process builds; xdist workers start after it and reuse the output.
    if not hasattr(config, "workerinput"):
        from fixtures.generate import generate

        generate()


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run `mlaudit ARGS` in-process from `cwd`; returns (exit_code, stdout, stderr)."""
    from mlaudit.cli import main

    def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
