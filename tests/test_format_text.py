"""Text output on a hand-built report, compared exactly (rich Console injected)."""

from __future__ import annotations

import io

from rich.console import Console

from mlaudit.model import ArtifactSummary, Finding, Location, Report, Severity
from mlaudit.report.text import format_value, render


def _report() -> Report:
    findings = (
        Finding("MLK001", "missing-readme", Severity.WARNING, "README.md has 4 words (minimum 30)",
                Location("README.md"), evidence={"words": 4, "min_words": 30},
                fix_hint="describe what the project does, how to install and run it"),
        Finding("MLC004", "nan-or-inf-weights", Severity.ERROR, "3 NaN values",
                Location("models/m.pt", pointer="fc.weight"), evidence={"nan": 3}),
        Finding("MLT010", "no-seed", Severity.INFO, "no seed set", Location("train.yaml", line=7),
                baselined=True),
    )
    return Report("0.1.0", (".",), findings, files_scanned=12, duration_s=0.25,
                  rules_run=("MLK001", "MLC004", "MLT010"),
                  artifacts=(ArtifactSummary("models/m.pt", "checkpoint",
                                             {"format": "torch-zip", "tensors": 2, "parameters": 1234,
                                              "size_bytes": 2_500_000}),),
                  suppressed=1)


def _render(**options) -> str:
    buf = io.StringIO()
    render(_report(), buf, console=Console(file=buf, width=100, color_system=None, highlight=False,
                                           soft_wrap=True), **options)
    return buf.getvalue()


def test_text_report_groups_by_file_and_hides_baselined():
    assert _render().splitlines() == [
        "README.md",
        "  MLK001 warning README.md has 4 words (minimum 30) [missing-readme]",
        "      fix: describe what the project does, how to install and run it",
        "models/m.pt",
        "  MLC004 error   fc.weight: 3 NaN values [nan-or-inf-weights]",
        "Checkpoints",
        " file        ┃ format    ┃ tensors ┃ parameters ┃    size ",
        "━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━",
        " models/m.pt │ torch-zip │       2 │      1,234 │ 2.50 MB ",
        "Found 1 error, 1 warning, 0 infos in 12 files (0.25 s, 3 rules); 1 suppressed, 1 baselined.",
    ]


def test_verbose_shows_evidence_and_baselined():
    text = _render(verbose=True)
    assert "      evidence: words=4, min_words=30" in text
    assert "  MLT010 info    7: no seed set [no-seed] (baselined)" in text


def test_quiet_prints_summary_only():
    assert _render(quiet=True).splitlines() == [
        "Found 1 error, 1 warning, 0 infos in 12 files (0.25 s, 3 rules); 1 suppressed, 1 baselined."
    ]


def test_format_value():
    assert format_value(1234567) == "1,234,567"
    assert format_value(0.5) == "0.5"
    assert format_value(1.5e-7) == "1.500e-07"
    assert format_value(float("nan")) == "nan"
    assert format_value([1, 2, 3, 4, 5, 6, 7]) == "[1, 2, 3, 4, 5, 6, ...]"


def test_checkpoint_table_counts_model_parameters_not_optimizer_moments():
    # A training checkpoint stores 3 values per parameter (weight + Adam's two moments): the
    # table's "parameters" column comes from the layout (model tensors only) when it ran.
    artifacts = (
        ArtifactSummary("last.ckpt", "checkpoint",
                        {"format": "lightning", "tensors": 12, "parameters": 152_677, "size_bytes": 617_183}),
        ArtifactSummary("last.ckpt", "checkpoint-layout", {"parameters": 50_890, "buffers": 0}),
        ArtifactSummary("raw.pt", "checkpoint",
                        {"format": "torch-zip", "tensors": 1, "parameters": 99, "size_bytes": 1_000}),
    )
    report = Report("0.1.0", (".",), (), files_scanned=2, duration_s=0.1, rules_run=(), artifacts=artifacts)
    buf = io.StringIO()
    console = Console(file=buf, width=100, color_system=None, highlight=False, soft_wrap=True)
    render(report, buf, console=console)
    rows = [line for line in buf.getvalue().splitlines() if "│" in line]
    assert "50,890" in rows[0] and "152,677" not in rows[0]
    assert "99" in rows[1]  # no layout artifact: the reader's element count
