"""Command-line entry point: `mlaudit` and `python -m mlaudit`.

A plain `mlaudit scan ...` (the pre-commit hook's and CI's run) is parsed by
mlaudit/cli_scan.py and runs without importing typer, click or rich; everything else (other
commands, `--help`, anything the fast parser does not take as plain) goes to the typer
application in mlaudit/cli_app.py. Both paths end in the same error handling below.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from mlaudit.cli_scan import EXIT_ERROR, EXIT_OK, CliError, parse_scan_args


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code: 0 clean, 1 findings fail the gate, 2 error."""
    args = sys.argv[1:] if argv is None else argv
    verbose = any(a in ("-v", "--verbose") for a in args)
    fast = parse_scan_args(args)
    if fast is not None:
        from mlaudit.cli_scan import run_scan

        return _guarded(lambda: run_scan(**fast), verbose)
    return _guarded(lambda: _run_typer(args), verbose)


def _run_typer(args: list[str]) -> Any:
    import typer

    try:  # typer >= 0.2x vendors click; older releases use the click package
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import UsageError  # type: ignore[assignment]

    from mlaudit.cli_app import app

    try:
        return app(args=args, prog_name="mlaudit", standalone_mode=False)
    except UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            return EXIT_ERROR
        hint = f" (see `mlaudit {err.ctx.info_name} --help`)" if err.ctx and err.ctx.parent else ""
        print(f"mlaudit: error: {err.format_message()}{hint}", file=sys.stderr)
        return EXIT_ERROR
    except typer.Abort:
        print("mlaudit: aborted", file=sys.stderr)
        return EXIT_ERROR
    except typer.Exit as err:
        return err.exit_code


def _guarded(run: Callable[[], Any], verbose: bool) -> int:
    """Run a command: a CliError is one line (exit 2), Ctrl-C exit 130, anything else one
    line too (exit 2), never a traceback unless `verbose`."""
    try:
        result = run()
    except CliError as err:
        print(f"mlaudit: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mlaudit: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # last line of defence: never a traceback unless asked
        if verbose:
            raise
        print(f"mlaudit: internal error: {type(err).__name__}: {err} (run with -v for details)",
              file=sys.stderr)
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK
