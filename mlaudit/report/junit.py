"""JUnit XML for CI test tabs: one test case per rule x file, a failure per finding group.

Rules that ran and found nothing appear as one passing case each, so the test tab shows what
was checked, not only what failed. Baselined findings (with `--show-baselined`) are skipped
cases, never failures.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import IO, Any

from mlaudit.model import Finding, Report
from mlaudit.report._common import message_with_pointer, visible_findings

# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ALL_FILES = "(all files)"


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)


def _line(f: Finding) -> str:
    return f"{f.severity.value}: {f.location.display()}: {message_with_pointer(f)}"


def junit_tree(report: Report, show_baselined: bool = False) -> ET.Element:
    """The <testsuites> element for a report."""
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    names: dict[str, str] = {}
    for f in visible_findings(report, show_baselined):
        groups[(f.code, f.location.path)].append(f)
        names[f.code] = f.name
    clean_rules = sorted(set(report.rules_run) - {code for code, _ in groups})
    failures = sum(1 for fs in groups.values() if any(not f.baselined for f in fs))
    skipped = len(groups) - failures
    tests = len(groups) + len(clean_rules)
    root = ET.Element("testsuites", name="mlaudit", tests=str(tests), failures=str(failures),
                      errors="0", skipped=str(skipped), time=f"{report.duration_s:.3f}")
    suite = ET.SubElement(root, "testsuite", name="mlaudit", tests=str(tests),
                          failures=str(failures), errors="0", skipped=str(skipped),
                          time=f"{report.duration_s:.3f}")
    for (code, path), found in sorted(groups.items()):
        case = ET.SubElement(suite, "testcase", classname=f"{code}.{names[code]}",
                             name=_clean(path), file=_clean(path))
        new = [f for f in found if not f.baselined]
        if new:
            worst = max(new, key=lambda f: f.severity.rank)
            failure = ET.SubElement(case, "failure", type=worst.severity.value,
                                    message=_clean(f"{len(new)} finding(s) of {code} in {path}"))
            failure.text = _clean("\n".join(_line(f) for f in new))
        else:
            ET.SubElement(case, "skipped", message=f"{len(found)} baselined finding(s)")
    for code in clean_rules:
        ET.SubElement(suite, "testcase", classname=code, name=ALL_FILES)
    return root


def render(report: Report, out: IO[str], *, show_baselined: bool = False, **_: Any) -> None:
    """Write the JUnit XML document."""
    root = junit_tree(report, show_baselined)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
