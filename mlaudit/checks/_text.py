"""Small text helpers shared by the repo-level checks: headings, front matter, word counts.

Pure functions on strings (no I/O). Markdown block structure (headings, code blocks) comes
from markdown-it-py (`mlaudit.inputs.markdown`); the heuristics here add what Markdown does
not call a heading but READMEs use as one: reStructuredText underlines, bold-only lines and
HTML `<hN>` tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlaudit.inputs.markdown import outline, split_lines

_UNDERLINE = re.compile(r"^\s*([=\-~^*+#`'\".:_])\1{2,}\s*$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)([^*_]{2,80})(?:\*\*|__)\s*:?\s*$")
_HTML_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.I)
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f][A-Za-z0-9\u00c0-\u024f'_-]*")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_TAG = re.compile(r"<[^>]+>")
_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class Heading:
    """A section heading: its normalized text and 1-based line number."""

    text: str
    line: int


def normalize(text: str) -> str:
    """Lower-case words only: 'Bias, Risks & Limitations:' -> 'bias risks limitations'."""
    text = _TAG.sub(" ", _LINK.sub(r"\1", text))
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """YAML front matter (as on Hugging Face model cards), the body, and the body's line offset.

    Returns ({}, text, 0) when there is no front matter or it is not a YAML mapping.
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text, 0
    for i in range(1, min(len(lines), 2000)):
        if lines[i].strip() in ("---", "..."):
            import yaml  # local: only model cards with front matter pay for it

            try:
                data = yaml.safe_load("\n".join(lines[1:i]))
            except yaml.YAMLError:
                data = None
            body = "\n".join(lines[i + 1 :])
            return (data if isinstance(data, dict) else {}), body, i + 1
    return {}, text, 0


def headings(text: str, line_offset: int = 0) -> list[Heading]:
    """Section headings in Markdown (ATX, setext, bold-only lines, <hN>) or reStructuredText."""
    out: list[Heading] = []
    lines = split_lines(text)
    structure = outline(text)
    markdown = {h.line: h for h in structure.headings}
    heading_lines = {n for h in structure.headings for n in range(h.line, h.end)}
    for i, line in enumerate(lines):
        lineno = i + 1 + line_offset
        if i in markdown:
            out.append(Heading(normalize(markdown[i].text), lineno))
            continue
        if i in structure.code_lines or i in heading_lines:
            continue
        # reST: a text line followed by an underline of one repeated character
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not _UNDERLINE.match(line) and _UNDERLINE.match(nxt):
            out.append(Heading(normalize(line), lineno))
            continue
        m = _BOLD_LINE.match(line)
        if m:
            out.append(Heading(normalize(m.group(1)), lineno))
            continue
        for h in _HTML_HEADING.findall(line):
            out.append(Heading(normalize(h), lineno))
    return [h for h in out if h.text]


def prose_words(text: str) -> int:
    """Words of prose: code blocks, HTML comments, tags, URLs and link targets left out."""
    text = _COMMENT.sub(" ", text)
    code = outline(text).code_lines
    kept = [line for i, line in enumerate(split_lines(text)) if i not in code]
    body = _URL.sub(" ", _TAG.sub(" ", _LINK.sub(r"\1", "\n".join(kept))))
    return len(_WORD.findall(body))


def matches_any(text: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """True when a normalized heading matches one of the regular expressions."""
    return any(re.search(p, text) for p in patterns)
