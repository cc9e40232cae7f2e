"""Engine behaviour: crash isolation, inconclusive inputs, selection, per-file ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlaudit.checks import registry
from mlaudit.checks.registry import RuleImpl
from mlaudit.engine import ScanAbort, scan
from mlaudit.inputs.session import ScanOptions
from mlaudit.model import Location, Severity
from mlaudit.selection import select_codes


def _bad_checkpoint(directory: Path) -> Path:
    path = directory / "broken.pt"
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    return path


def test_crashing_rule_becomes_finding_and_others_still_run(tmp_path, monkeypatch):
    registry.implementations()

    def crash(target, ctx):
        raise ZeroDivisionError("boom")

    def fine(target, ctx):
        yield ctx.finding("still ran", Location("."))

    # Borrow two real codes' metadata; the implementations are test doubles.
    monkeypatch.setitem(registry._IMPLS, "MLA001", RuleImpl("MLA001", "project", fine))
    monkeypatch.setitem(registry._IMPLS, "MLA002", RuleImpl("MLA002", "project", crash))
    _bad_checkpoint(tmp_path)
    report = scan([tmp_path], ScanOptions(codes=("MLA001", "MLA002")))
    messages = [(f.code, f.message) for f in report.findings]
    assert ("MLA001", "still ran") in messages
    crashed = [m for c, m in messages if "crashed" in m]
    assert len(crashed) == 1 and "MLA002" in crashed[0] and "ZeroDivisionError: boom" in crashed[0]
    # The inventory still reports the unreadable checkpoint.
    assert any(c == "MLA002" and "not checked" in m for c, m in messages)


def test_unreadable_file_in_directory_is_inconclusive_not_clean(tmp_path):
    _bad_checkpoint(tmp_path)
    report = scan([tmp_path], ScanOptions(codes=("MLA002",)))
    [finding] = report.findings
    assert finding.code == "MLA002" and finding.severity is Severity.ERROR
    assert finding.location.path.endswith("broken.pt")
    assert report.gating(Severity.ERROR) == [finding]


def test_unreadable_file_named_directly_aborts_with_one_line(tmp_path):
    path = _bad_checkpoint(tmp_path)
    with pytest.raises(ScanAbort) as info:
        scan([path], ScanOptions(codes=("MLA002",)))
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_per_file_ignores_suppress_and_count(tmp_path):
    _bad_checkpoint(tmp_path)
    options = ScanOptions(codes=("MLA002",), per_file_ignores={"*.pt": ("MLA",)})
    report = scan([tmp_path], options)
    assert report.findings == () and report.suppressed == 1


def test_missing_path_aborts(tmp_path):
    with pytest.raises(ScanAbort, match="no such file"):
        scan([tmp_path / "nope"], ScanOptions(codes=()))


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        (["ALL"], [], ["MLA001", "MLA002", "MLK001", "MLK101"]),
        (["MLK"], [], ["MLK001", "MLK101"]),
        (["MLK"], ["MLK1"], ["MLK001"]),
        (["MLK101"], ["MLK"], ["MLK101"]),  # longer select beats shorter ignore
        (["MLK"], ["MLK"], []),  # tie: ignore wins
        (["ALL"], ["MLA"], ["MLK001", "MLK101"]),
    ],
)
def test_selection_longest_match_wins(select, ignore, expected):
    codes = ["MLA001", "MLA002", "MLK001", "MLK101"]
    assert select_codes(codes, select, ignore) == expected
