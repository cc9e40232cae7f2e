"""Inline suppressions: `# mlaudit: ignore[CODE1,CODE2] reason` in YAML and Python files.

A comment suppresses findings of the listed codes (or code prefixes) on its own line or on
the line below it (a comment line directly above the offending line).
`# mlaudit: ignore-file[CODE] reason` covers the whole file, including findings about keys
a config leaves out (which have no line). Comments that
suppress nothing for a rule that ran are reported as MLA003 (unused-inline-suppression).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mlaudit.inputs import InputError
from mlaudit.model import Finding, Location

UNUSED_SUPPRESSION = "MLA003"
COMMENT = re.compile(r"#\s*mlaudit:\s*ignore(-file)?\[([A-Za-z0-9_, ]+)\]\s*(.*)$")
SUFFIXES = (".py", ".yaml", ".yml", ".ipynb")
# Every suppression comment holds this; a file whose text does not needs no closer look.
MARKER = "mlaudit:"


@dataclass
class Suppression:
    """One `ignore[...]` comment and which of its codes matched a finding."""

    path: str  # root-relative
    line: int
    codes: tuple[str, ...]
    reason: str
    used: set[str]
    whole_file: bool = False

    def covers(self, code: str, line: int | None) -> str | None:
        if not self.whole_file and line not in (self.line, self.line + 1):
            return None
        return next((c for c in self.codes if code.startswith(c)), None)


def _python_comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, comment) for every real comment token: a `#` inside a string is no comment."""
    import io
    import tokenize

    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                yield tok.start[0], tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return  # unparsable code is reported as MLA002 by the python reader


def _notebook_comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, comment) in a Jupyter notebook: Jupyter writes each source line as a JSON string
    on its own file line, so each such line is decoded and its Python comment taken (the
    line numbers are the .ipynb file's, as in the notebook reader)."""
    import json

    for number, line in enumerate(text.splitlines(), start=1):
        raw = line.strip().rstrip(",")
        if "mlaudit:" not in raw or not raw.startswith('"'):
            continue
        try:
            src = json.loads(raw)
        except ValueError:
            continue
        if isinstance(src, str):
            for _, comment in _python_comments(src.rstrip("\n") + "\n"):
                yield number, comment


_BLOCK_SCALAR = re.compile(r"""(?:^|[:\-]\s)\s*[|>][-+0-9]*\s*(?:#.*)?$""")


def _yaml_comments(text: str) -> Iterator[tuple[int, str]]:
    """(line, comment) for YAML comments: a `#` at the start of a line or after white space,
    outside quotes and outside block scalars (`key: |` text is content, not comments)."""
    block_indent: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        quote = None
        for i, ch in enumerate(line):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"" and (i == 0 or line[i - 1] in " :[{,-"):
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
                yield number, line[i:]
                break
        if _BLOCK_SCALAR.search(line.split(" #", 1)[0] if not stripped.startswith("#") else ""):
            block_indent = indent


def parse_suppressions(rel: str, text: str) -> list[Suppression]:
    """Every suppression comment in a file; only real comments count (Python comment tokens,
    YAML comments outside strings and block scalars)."""
    out: list[Suppression] = []
    if MARKER not in text:
        return out
    if rel.endswith(".py"):
        comments = _python_comments(text)
    elif rel.endswith(".ipynb"):
        comments = _notebook_comments(text)
    else:
        comments = _yaml_comments(text)
    for number, comment in comments:
        match = COMMENT.search(comment)
        if match:
            codes = tuple(c.strip().upper() for c in match.group(2).split(",") if c.strip())
            out.append(Suppression(rel, number, codes, match.group(3).strip(), set(), bool(match.group(1))))
    return out


def apply_inline_suppressions(
    findings: list[Finding],
    files: Iterable[tuple[str, Callable[[], str]]],
    prefix: str,
    ran: Iterable[str],
    report_unused: Callable[[str, str, int], Finding] | None,
) -> tuple[list[Finding], int]:
    """Drop findings covered by inline comments; returns (kept findings incl. MLA003, count suppressed).

    `files` yields (root-relative path, text reader) for YAML/Python files; `ran` are the
    codes that ran (a suppression for a rule that did not run is not judged unused)."""
    by_path: dict[str, list[Suppression]] = {}
    for rel, read in files:
        if rel.endswith(SUFFIXES):
            found = parse_suppressions(rel, read())
            if found:
                by_path[rel] = found
    if not by_path:
        return findings, 0
    kept, suppressed = [], 0
    for f in findings:
        path = f.location.path
        rel = path[len(prefix):] if prefix and path.startswith(prefix) else path
        hit = None
        for s in by_path.get(rel, ()):
            code = s.covers(f.code, f.location.line)
            if code:
                s.used.add(code)
                hit = s
        if hit is None:
            kept.append(f)
        else:
            suppressed += 1
    ran = set(ran)
    if report_unused is not None:
        for sups in by_path.values():
            for s in sups:
                for code in s.codes:
                    judged = any(r.startswith(code) for r in ran)
                    if judged and code not in s.used:
                        kept.append(report_unused(s.path, code, s.line))
    return kept, suppressed


def unused_finding_factory(ctx) -> Callable[[str, str, int], Finding]:
    """Builds MLA003 findings with the engine's RuleContext for MLA003."""

    def make(rel: str, code: str, line: int) -> Finding:
        return ctx.finding(
            f"inline suppression of {code} matches no finding it covers",
            Location(rel, line),
            evidence={"code": code},
            key=code,
        )

    return make


def _text_or_empty(session, f) -> str:
    """A file's text; '' when it cannot be read (its reader reports that as MLA002)."""
    try:
        return session.read_text(f)
    except InputError:
        return ""


def apply_to_session(findings: list[Finding], session, ran: Iterable[str], prefix: str,
                     unused_ctx) -> tuple[list[Finding], int]:
    """Engine hook: inline suppressions over the session's YAML/Python files.

    `unused_ctx` is the RuleContext of MLA003, or None when MLA003 is not selected."""
    files = [
        (f.rel, (lambda f=f: _text_or_empty(session, f)))
        for f in session.files
        # notebooks carry their outputs (images), so they get the notebook reader's size limit
        if f.rel.endswith(SUFFIXES)
        and f.kind != "unreadable"  # reported as MLA002 by the engine
        and not session.lacks(f.rel, MARKER)  # known from the code rules' read: nothing to find
        and f.size <= (20_000_000 if f.rel.endswith(".ipynb") else 1_000_000)
    ]
    factory = unused_finding_factory(unused_ctx) if unused_ctx is not None else None
    return apply_inline_suppressions(findings, files, prefix, ran, factory)
