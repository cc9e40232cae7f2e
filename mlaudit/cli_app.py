"""The typer application: every command's options, help texts and usage errors.

`mlaudit.cli.main` comes here for everything but the plain `scan` argument lists that
mlaudit/cli_scan.py parses itself (the scan's body lives there, without typer). Heavy modules
(engine, checks, torch) are imported inside the commands that need them so `mlaudit --help`
stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mlaudit import __version__
from mlaudit.cli_scan import EXIT_FINDINGS, EXIT_OK, CliError
from mlaudit.cli_scan import split_codes as _split

app = typer.Typer(
    name="mlaudit",
    help="Audit and remediate technical debt in machine-learning projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"mlaudit {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Audit and remediate technical debt in machine-learning projects."""


CodesOpt = Annotated[list[str] | None, typer.Option(help="Rule codes or prefixes (comma-separated or repeated).")]


@app.command()
def scan(
    paths: Annotated[list[str] | None, typer.Argument(help="Project directories, single files, or remote URLs: s3://bucket/prefix, gs://..., hf://... (extra mlaudit[remote]) (default: .).")] = None,
    select: CodesOpt = None,
    ignore: CodesOpt = None,
    extend_select: CodesOpt = None,
    fail_on: Annotated[str | None, typer.Option(help="Lowest severity that fails: error, warning, info.")] = None,
    output_format: Annotated[str | None, typer.Option("--format", help="Output format: text, json, jsonl, sarif, github, gitlab, junit, markdown, html.")] = None,
    output: Annotated[list[str] | None, typer.Option(help="Write a report to a file: PATH (in --format) or FORMAT=PATH; repeatable; '-' is stdout.")] = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when findings fail the gate.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Training config to pair with the checkpoints (overrides discovery).")] = None,
    settings: Annotated[Path | None, typer.Option("--settings", help="mlaudit settings file (pyproject.toml or mlaudit.yaml) instead of the nearest one.")] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="Ignore all mlaudit settings files.")] = False,
    run_model: Annotated[bool, typer.Option("--run-model", help="Allow importing and running the project's model class (never by default).")] = False,
    spectral: Annotated[bool, typer.Option("--spectral", help="Also compute spectral weight metrics (slower).")] = False,
    ignore_suppressions: Annotated[bool, typer.Option("--ignore-suppressions", help="Report findings even where suppressed (audits).")] = False,
    exclude: Annotated[list[str] | None, typer.Option(help="Extra glob patterns to skip.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Baseline file: findings recorded in it do not fail the gate.")] = None,
    write_baseline: Annotated[Path | None, typer.Option(help="Record all current findings in this baseline file (exit 0).")] = None,
    update_baseline: Annotated[bool, typer.Option("--update-baseline", help="Prune stale entries from the --baseline file.")] = False,
    show_baselined: Annotated[bool, typer.Option("--show-baselined", help="Also show baselined findings (at note level).")] = False,
    diff_base: Annotated[str | None, typer.Option(help="Gate only findings in files (and lines) changed since this git ref.")] = None,
    statistics: Annotated[bool, typer.Option("--statistics", help="Print the number of findings per rule.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show evidence and tracebacks.")] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Processes for checkpoint reads and Python code rules (default: MLAUDIT_JOBS, else one per core); the report is the same for any number.")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Directory of a content-addressed cache: a re-run loads only new or changed checkpoints.")] = None,
    executor: Annotated[str, typer.Option("--executor", help="Where checkpoint work runs: local (processes, --jobs) or ray (a Ray cluster; extra mlaudit[ray]).")] = "local",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to use with --executor ray (e.g. auto, ray://host:10001); default: start a local one with --jobs CPUs.")] = None,
) -> int:
    """Scan a project (or one checkpoint or config) for ML technical debt."""
    arguments = dict(locals())  # before any other name is bound here
    from mlaudit.cli_scan import run_scan

    return run_scan(**arguments)


@app.command("rules")
def list_rules(
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of internal errors.")] = False,
) -> int:
    """List every rule: code, name, family, default severity, fixable."""
    from mlaudit.catalog import load_catalog

    catalog = load_catalog()
    if output_format == "json":
        import json

        rows = [
            {"code": m.code, "name": m.name, "family": m.family, "severity": m.severity.value,
             "fixable": m.fixable, "status": m.status, "summary": m.summary}
            for m in catalog.values()
        ]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if output_format != "text":
        raise CliError(f"unknown format {output_format!r} (expected text or json)")
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("code", "name", "family", "severity", "fix", "summary"):
        table.add_column(col, overflow="fold")
    for m in catalog.values():
        fix = m.fix.applicability if m.fix else ""
        name = m.name + (" (preview)" if m.status == "preview" else "")
        table.add_row(m.code, name, m.family, m.severity.value, fix, m.summary)
    Console(highlight=False).print(table)
    return EXIT_OK


@app.command("rule")
def show_rule(
    code: Annotated[str, typer.Argument(help="Rule code (MLK001) or name.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of internal errors.")] = False,
) -> int:
    """Print one rule's documentation."""
    from mlaudit.catalog import lookup
    from mlaudit.docs import rule_markdown

    meta = lookup(code)
    if meta is None:
        raise CliError(f"unknown rule {code!r} (see `mlaudit rules`)")
    from rich.markdown import Markdown

    Console().print(Markdown(rule_markdown(meta)))
    return EXIT_OK


@app.command("fix")
def fix(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint, TorchScript / torch.export file, ONNX model, or Hugging Face model directory.")],
    config: Annotated[Path | None, typer.Option("--config", help="Training config: model class (_target_ + kwargs) and input_spec.")] = None,
    apply: Annotated[list[str] | None, typer.Option("--apply", help="Fixes to apply (comma-separated or repeated), e.g. onnx,int8 or prune:mode=unstructured.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory (default: <stem>-fixed/ beside the input).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    unsafe_fixes: Annotated[bool, typer.Option("--unsafe-fixes", help="Also apply fixes that change numbers (int8, cast).")] = False,
    budget: Annotated[list[str] | None, typer.Option("--budget", help="Fidelity budget, e.g. cosine=0.99,top1=0.99,accuracy-drop=0.01,latency=1.0,time=120.")] = None,
    eval_data: Annotated[Path | None, typer.Option("--eval-data", help=".npz with x (inputs) and optionally y (labels).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output directory.")] = False,
    keep_failed: Annotated[bool, typer.Option("--keep-failed", help="Keep the artifact of a fix that failed its budget.")] = False,
    run_model: Annotated[bool, typer.Option("--run-model", help="Allow importing and running the config's model class.")] = False,
    measure_seconds: Annotated[float, typer.Option("--measure-seconds", help="Time spent timing each batch size.")] = 1.0,
    threads: Annotated[int | None, typer.Option("--threads", help="Threads for PyTorch and ONNX Runtime (default: min(4, cores)).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks of internal errors.")] = False,
) -> int:
    """Remediate a checkpoint with verified fixes and write a before/after report."""
    from mlaudit.extras import need_line

    line = need_line("mlaudit fix")
    if line:
        raise CliError(line)
    from mlaudit.fix_scan import scan_for_fixes
    from mlaudit.fixers import FixError, outdir
    from mlaudit.fixers.base import Budget
    from mlaudit.fixers.runner import FixOptions

    console = Console(highlight=False, soft_wrap=True)
    done: list[Any] = []  # the outcome, once run_fix returned
    try:
        opts = FixOptions(checkpoint=checkpoint, config=config, apply=tuple(_split(apply)), out=out,
                          dry_run=dry_run, unsafe_fixes=unsafe_fixes, budget=Budget.parse(_split(budget)),
                          eval_data=eval_data, force=force, keep_failed=keep_failed, run_model=run_model,
                          measure_seconds=measure_seconds, threads=threads, scanner=scan_for_fixes)
        # SIGTERM is handled like Ctrl-C (issue 11) for the whole command, reports included:
        # the runner cleans up at its next safe point, exit 143 with one line
        with outdir.sigterm_as_interrupt():
            return _fix_and_report(opts, console, done)
    except FixError as err:
        raise CliError(str(err)) from None
    except outdir.Terminated:  # the runner removed its work directory on the way out
        outcome = done[0] if done else None
        if outcome is not None and outcome.kept and outcome.out_dir is not None:
            # SIGTERM after the runner's last safe point: the output was already moved into place
            print(f"mlaudit: terminated (SIGTERM) after the output was complete: {outcome.out_dir}",
                  file=sys.stderr)
        else:
            print("mlaudit: terminated (SIGTERM); nothing written", file=sys.stderr)
        return outdir.EXIT_TERMINATED


def _fix_and_report(opts: Any, console: Console, done: list[Any]) -> int:
    """Run the fix with its progress line, print the outcome, write the HTML report."""
    from mlaudit.fixers.runner import default_out, run_fix
    from mlaudit.progress import progress

    checkpoint, dry_run = opts.checkpoint, opts.dry_run
    # On a terminal, after ~1 s: the step that finished last; a fixer's own
    # `progress(...)` (export, int8 layer i of N, timing) shows as a sub-line of this one.
    with progress(f"fix {checkpoint.name}") as bar:
        def show(step: Any) -> None:
            console.print(f"  {step.name}: {step.status} - {step.detail}", markup=False)
            bar.step(f"{step.name} {step.status}")

        outcome = run_fix(opts, on_step=None if dry_run else show)
    done.append(outcome)
    plan = outcome.plan
    if dry_run or not plan.steps:
        if not plan.steps:
            console.print(f"nothing to fix in {checkpoint}" + "".join(f"; {n}" for n in plan.notes)
                          + " (name fixes with --apply)")
            return EXIT_OK
        console.print(f"plan for {checkpoint} ({plan.artifact_kind}) -> {opts.out or default_out(checkpoint)} (dry run, nothing written):")
        for i, s in enumerate(plan.steps, 1):
            console.print(f"  {i}. {s.name} [{s.applicability}] {s.effect} (why: {s.reason})", markup=False)
            for f in s.findings:
                args = "; ".join(f"{k}={_shown_values(v)}" for k, v in (f.fix.args if f.fix else {}).items())
                console.print(f"     answers {f.code} {f.location.display()}" + (f" ({args})" if args else ""),
                              markup=False)
        for n in plan.notes:
            console.print(f"  note: {n}")
        return EXIT_OK
    if outcome.report is not None:
        from mlaudit.fixers.report import table

        console.print(table(outcome.report))
        for w in outcome.report["warnings"]:
            console.print(f"warning: {w}", markup=False)
        if outcome.kept and outcome.out_dir is not None:
            _write_fix_html(outcome.report, outcome.out_dir)
    if outcome.budget_failure:
        kept = f" (artifact kept in {outcome.out_dir})" if outcome.kept else " (nothing written; --keep-failed keeps it)"
        print(f"mlaudit: budget failed: {outcome.budget_failure}{kept}", file=sys.stderr)
        return EXIT_FINDINGS
    console.print(f"fixed: {outcome.out_dir} (fix-report.md, fix-report.json, fix-report.html)")
    return EXIT_OK


def _shown_values(value: str | tuple[str, ...], most: int = 4) -> str:
    """A fix argument for the dry run: a string as is, a tuple as its first values and a count."""
    if isinstance(value, str):
        return value
    more = len(value) - most
    return ",".join(value[:most]) + (f" (+{more} more)" if more > 0 else "")


def _write_fix_html(report: dict[str, Any], out_dir: Path) -> None:
    """fix-report.html beside the JSON it is drawn from (written atomically, like the others)."""
    from mlaudit.fsutil import atomic_write_text
    from mlaudit.report.fix_html import render_fix

    try:
        atomic_write_text(out_dir / "fix-report.html", render_fix(report))
    except OSError as err:
        raise CliError(f"{out_dir / 'fix-report.html'}: cannot write report: {err.strerror or err}") from None
