"""`mlaudit scan` without typer: the command's body, and a parser for the common argument
lists that gives the command exactly the values typer would.

A scan is the command people run on every commit (pre-commit hook, CI), and importing typer,
click and rich costs about as much CPU as a small scan's work. `parse_scan_args` accepts only
argument lists whose meaning is plain (`scan`, then known long options with their values, `-q`,
`-v`, `-j N`, and paths) and returns None for anything else: `--help`, unknown or abbreviated
options, combined short flags, a value that looks like an option, a repeated single-valued
option, `--`. Those go through typer, so help texts and usage errors stay typer's.
tests/test_cli_fast.py checks the option table against typer's command and the parsed values
against what typer hands the command.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

# The formats whose renderers take no console: the rich Console (and rich itself) is created
# only for the text format and for plugin formats, which may draw with it.
_CONSOLE_FREE_FORMATS = frozenset({"json", "jsonl", "sarif", "github", "gitlab", "junit", "markdown", "html"})


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def split_codes(values: list[str] | None) -> list[str]:
    """Accept both `--select A,B` and repeated `--select A --select B`."""
    out: list[str] = []
    for v in values or []:
        out.extend(part.strip() for part in v.split(",") if part.strip())
    return out


# option -> (keyword of run_scan, kind): flag (bool), str, path, int (>= 1); "+" = repeatable.
# Must equal typer's declaration of `scan` in mlaudit/cli_app.py (tests/test_cli_fast.py).
SCAN_OPTIONS: dict[str, tuple[str, str]] = {
    "--select": ("select", "str+"),
    "--ignore": ("ignore", "str+"),
    "--extend-select": ("extend_select", "str+"),
    "--fail-on": ("fail_on", "str"),
    "--format": ("output_format", "str"),
    "--output": ("output", "str+"),
    "--exit-zero": ("exit_zero", "flag"),
    "--config": ("config", "path"),
    "--settings": ("settings", "path"),
    "--isolated": ("isolated", "flag"),
    "--run-model": ("run_model", "flag"),
    "--spectral": ("spectral", "flag"),
    "--ignore-suppressions": ("ignore_suppressions", "flag"),
    "--exclude": ("exclude", "str+"),
    "--baseline": ("baseline", "path"),
    "--write-baseline": ("write_baseline", "path"),
    "--update-baseline": ("update_baseline", "flag"),
    "--show-baselined": ("show_baselined", "flag"),
    "--diff-base": ("diff_base", "str"),
    "--statistics": ("statistics", "flag"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
    "--verbose": ("verbose", "flag"),
    "-v": ("verbose", "flag"),
    "--jobs": ("jobs", "int"),
    "-j": ("jobs", "int"),
    "--cache": ("cache", "path"),
    "--executor": ("executor", "str"),
    "--ray-address": ("ray_address", "str"),
}
# Options whose default is not None / False.
_DEFAULTS: dict[str, Any] = {"executor": "local"}


def scan_defaults() -> dict[str, Any]:
    """The keyword arguments of `run_scan` when no option is given."""
    out: dict[str, Any] = {"paths": None}
    for name, kind in SCAN_OPTIONS.values():
        out[name] = False if kind == "flag" else _DEFAULTS.get(name)
    return out


def parse_scan_args(argv: list[str]) -> dict[str, Any] | None:
    """`run_scan` keyword arguments for `argv` (`["scan", ...]`), or None when typer must
    parse it (see the module doc). Never raises."""
    if not argv or argv[0] != "scan" or os.environ.get("_MLAUDIT_COMPLETE"):
        return None
    values = scan_defaults()
    given: set[str] = set()
    paths: list[str] = []
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        if not token or token == "-" or token == "--":
            return None
        if not token.startswith("-"):
            paths.append(token)
            continue
        name, eq, inline = token.partition("=")
        spec = SCAN_OPTIONS.get(name)
        if spec is None or (eq and not name.startswith("--")):
            return None
        key, kind = spec
        if kind == "flag":
            if eq:
                return None
            values[key] = True
            continue
        if eq:
            value = inline
        elif rest:
            value = rest.pop(0)
        else:
            return None
        if not value or value.startswith("-") and value != "-":
            return None
        if kind == "str+":
            values[key] = [*(values[key] or []), value]
            continue
        if key in given:
            return None
        given.add(key)
        if kind == "path":
            values[key] = Path(value)
        elif kind == "int":
            if not (value.isascii() and value.isdigit()) or int(value) < 1:
                return None
            values[key] = int(value)
        else:
            values[key] = value
    values["paths"] = paths or None
    return values


def run_scan(
    paths: list[str] | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    extend_select: list[str] | None = None,
    fail_on: str | None = None,
    output_format: str | None = None,
    output: list[str] | None = None,
    exit_zero: bool = False,
    config: Path | None = None,
    settings: Path | None = None,
    isolated: bool = False,
    run_model: bool = False,
    spectral: bool = False,
    ignore_suppressions: bool = False,
    exclude: list[str] | None = None,
    baseline: Path | None = None,
    write_baseline: Path | None = None,
    update_baseline: bool = False,
    show_baselined: bool = False,
    diff_base: str | None = None,
    statistics: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    jobs: int | None = None,
    cache: Path | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> int:
    """Scan a project (or one checkpoint or config) for ML technical debt."""
    if not spectral:
        _one_blas_thread()
    from mlaudit.catalog import load_catalog
    from mlaudit.config import ConfigError, load_project_config
    from mlaudit.engine import ScanAbort
    from mlaudit.engine import scan as run_engine
    from mlaudit.gate import GateError, GateOptions, apply_gate, display_path, parse_outputs
    from mlaudit.inputs.remote import is_remote
    from mlaudit.inputs.session import ScanOptions
    from mlaudit.model import RegistryError, Severity
    from mlaudit.report import available_formats, render
    from mlaudit.selection import SelectionError, select_codes, validate

    # a URL stays a string: Path("s3://b/k") would fold the "//"
    targets: list[Path | str] = [p if is_remote(p) else Path(p) for p in paths or ["."]]
    try:
        catalog = load_catalog()
        first = targets[0]
        start = first if isinstance(first, Path) else Path(".")
        project = load_project_config(start, settings, isolated, catalog)
        codes = list(catalog)
        cli_select = validate(split_codes(select), codes)
        cli_ignore = validate(split_codes(ignore), codes)
        cli_extend = validate(split_codes(extend_select), codes)
        # CLI beats config: --select replaces the config's select; ignores and
        # extend-selects from both places add up.
        chosen = select_codes(
            [c for c, m in catalog.items() if m.status != "preview" or c in cli_select],
            select=cli_select or project.get("select", ["ALL"]),
            ignore=[*project.get("ignore", []), *cli_ignore],
            extend_select=[*project.get("extend-select", []), *cli_extend],
        )
        fail_level = Severity.parse(fail_on or project.get("fail-on", "error"))
        fmt = output_format or project.get("format", "text")
        formats = available_formats()
        if fmt not in formats:
            raise CliError(f"unknown format {fmt!r} (expected one of: {', '.join(formats)})")
        specs = output or ([project.get("output")] if project.get("output") else [])
        outputs = parse_outputs(specs, fmt, list(formats))
        if "html" in {fmt, *(f for f, _, _ in outputs)}:
            _require_html()  # before the scan: a missing extra should not cost a whole scan
        if baseline and write_baseline:
            raise CliError("--baseline and --write-baseline exclude each other")
        # A `baseline` from the settings file is relative to that file, like a committed path.
        configured = project.get("baseline")
        baseline_path = baseline or (project.base_dir / configured if configured else None)
        settings_file = display_path(project.path, Path.cwd()) if project.path else None
        if config is not None:  # named directly: unreadable or not a training config -> exit 2
            from mlaudit.inputs import InputError
            from mlaudit.inputs.training_config import read_training_config

            try:
                read_training_config(config, str(config), require=True)
            except InputError as err:
                raise CliError(str(err)) from None
        _check_executor(executor, ray_address)
        if run_model:
            from mlaudit.extras import need_line

            line = need_line("--run-model", ("torch",))
            if line:
                raise CliError(line)
        options = ScanOptions(
            codes=tuple(chosen),
            params=project.get("params", {}),
            severity_overrides=project.get("severity", {}),
            exclude=(*project.get("exclude", []), *split_codes(exclude)),
            per_file_ignores=project.get("per-file-ignores", {}),
            respect_gitignore=project.get("respect-gitignore", True),
            allow_code=run_model or project.get("allow-code", False),
            training_config=config,
            spectral=spectral,
            ignore_suppressions=ignore_suppressions,
            per_file_ignore_reasons=project.get("per-file-ignore-reasons", {}),
            require_suppression_reason=project.get("require-suppression-reason", False),
            settings_file=settings_file,
            jobs=jobs,
            cache_dir=cache,
            executor=executor,
            ray_address=ray_address,
        )
        report = run_engine(targets, options)
        from mlaudit.engine import rule_context

        report, messages = apply_gate(
            report,
            GateOptions(baseline=None if write_baseline else baseline_path, write_baseline=write_baseline,
                        update_baseline=update_baseline, diff_base=diff_base),
            options.codes, lambda code: rule_context(code, options), Path.cwd(),
        )
    except (ConfigError, ScanAbort, SelectionError, CliError, GateError, RegistryError) as err:
        raise CliError(str(err)) from None
    except ValueError as err:  # Severity.parse on a bad --fail-on
        raise CliError(f"--fail-on: {err}") from None

    render_opts = {"quiet": quiet, "verbose": verbose, "show_baselined": show_baselined}
    files = [(f, p) for f, p, _ in outputs if p != "-"]
    stdout_fmt = next((f for f, p, _ in outputs if p == "-"), None)
    if stdout_fmt is None and not any(not typed for _, _, typed in outputs):
        stdout_fmt = fmt  # only FORMAT=PATH outputs: stdout still gets the --format report
    # Every output is rendered, then written atomically, before the exit code is decided.
    _write_outputs(files, report, render_opts)
    info = sys.stdout if stdout_fmt in (None, "text") else sys.stderr
    from mlaudit.report.text import summary_line

    if stdout_fmt == "text" and quiet:
        # The summary alone holds no markup, emoji codes or styles: rich would print these
        # very characters, so rich is not imported for it (the hook's and CI's usual run).
        print(summary_line(report))
    elif stdout_fmt is not None:
        console = None if stdout_fmt in _CONSOLE_FREE_FORMATS else _console()
        render(stdout_fmt, report, sys.stdout, console=console, **render_opts)
    written = f" Report written to {', '.join(p for _, p in files)}." if files else ""
    if stdout_fmt is None:
        _console().print(summary_line(report) + written)
    elif written:
        print(written.strip(), file=info)
    for message in messages:
        print(message, file=info)
    if statistics:
        from mlaudit.gate import statistics as rule_counts

        print("\n".join(rule_counts(report)), file=info)
    failing = report.gating(fail_level)
    return EXIT_FINDINGS if failing and not exit_zero else EXIT_OK


def _console() -> Any:
    """The rich Console of the terminal report (imported here: only a drawn report needs it)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _one_blas_thread() -> None:
    """Run numpy's BLAS on one thread unless the user chose otherwise (before numpy loads).

    A scan's numpy work is reductions and dot products over one tensor at a time: memory-bound,
    where OpenBLAS's extra threads only spin. On 1,000 small checkpoints they doubled the CPU
    time of the statistics for the same wall time, and with --jobs every worker started its own
    threads on cores the other workers use. (`--spectral` keeps them: its SVDs do scale.)"""
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _check_executor(executor: str, ray_address: str | None) -> None:
    """--executor and --ray-address make sense together, and Ray is installed (before a scan)."""
    if executor not in ("local", "ray"):
        raise CliError(f"--executor {executor!r}: expected local or ray")
    if ray_address and executor != "ray":
        raise CliError("--ray-address needs --executor ray")
    if executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise CliError("--executor ray needs Ray: pip install 'mlaudit[ray]'")


def _require_html() -> None:
    """Import the HTML format now; one clear line when its plotting library is missing."""
    try:
        import mlaudit.report.html  # noqa: F401  (matplotlib comes in here, and only for HTML)
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "matplotlib":
            raise CliError("the html format needs matplotlib: pip install 'mlaudit[html]'") from None
        raise


def _write_outputs(files: list[tuple[str, str]], report: Any, render_opts: dict[str, Any]) -> None:
    """Render every (format, path) output to memory first, then write each atomically."""
    from mlaudit.fsutil import atomic_write_text
    from mlaudit.report import render

    rendered = []
    for fmt, path in files:
        buffer = io.StringIO()
        console = None
        if fmt not in _CONSOLE_FREE_FORMATS:
            from rich.console import Console

            console = Console(file=buffer, no_color=True, width=120, highlight=False, soft_wrap=True)
        render(fmt, report, buffer, console=console, **render_opts)
        rendered.append((path, buffer.getvalue()))
    for path, text in rendered:
        try:
            atomic_write_text(Path(path), text)
        except OSError as err:
            raise CliError(f"{path}: cannot write report: {err.strerror or err}") from None
