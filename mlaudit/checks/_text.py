"""Small text helpers shared by the repo-level checks: headings, front matter, word counts.

Pure functions on strings (no I/O); the leading underscore keeps the module out of rule
discovery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_UNDERLINE = re.compile(r"^\s*([=\-~^*+#`'\".:_])\1{2,}\s*$")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)([^*_]{2,80})(?:\*\*|__)\s*:?\s*$")
_HTML_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
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
    lines = text.splitlines()
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        lineno = i + 1 + line_offset
        m = _ATX.match(line)
        if m:
            out.append(Heading(normalize(m.group(2)), lineno))
            continue
        # setext / reST: a text line followed by an underline of one repeated character
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
    kept: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(line)
    body = _URL.sub(" ", _TAG.sub(" ", _LINK.sub(r"\1", "\n".join(kept))))
    return len(_WORD.findall(body))


def matches_any(text: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """True when a normalized heading matches one of the regular expressions."""
    return any(re.search(p, text) for p in patterns)
