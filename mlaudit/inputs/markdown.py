"""Markdown structure through markdown-it-py (CommonMark): which lines are headings (ATX and
setext, also inside lists and quotes) and which lines are code (fenced or indented), so that
a `# comment` inside a code block is never taken for a heading. Nothing is rendered.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt


@dataclass(frozen=True)
class MarkdownHeading:
    """A heading: its 0-based first line, the lines it spans (setext: two), level and text."""

    line: int
    end: int
    level: int
    text: str


@dataclass(frozen=True)
class Outline:
    """The block structure the docs rules need (0-based line numbers)."""

    headings: tuple[MarkdownHeading, ...]
    code_lines: frozenset[int]  # every line of a fenced or indented code block
    fence_lines: frozenset[int]  # the ``` / ~~~ marker lines among them


@functools.lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # imported here: markdown-it-py is ~60 modules, and most scans hold no Markdown to parse
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def split_lines(text: str) -> list[str]:
    """Lines as markdown-it numbers them (\n, \r\n or \r ends a line; nothing else)."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def outline(text: str) -> Outline:
    """Headings and code lines of a Markdown document."""
    tokens = _parser().parse(text)
    lines = split_lines(text)
    heads: list[MarkdownHeading] = []
    code: set[int] = set()
    fences: set[int] = set()
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1] if i + 1 < len(tokens) else None
            heads.append(MarkdownHeading(tok.map[0], tok.map[1], int(tok.tag[1:]),
                                         inline.content if inline is not None else ""))
        elif tok.type in ("fence", "code_block") and tok.map:
            start, end = tok.map
            code.update(range(start, end))
            if tok.type == "fence":
                fences.add(start)
                closing = end - 1
                if closing > start and closing < len(lines) and lines[closing].strip().startswith(tok.markup):
                    fences.add(closing)
    return Outline(tuple(heads), frozenset(code), frozenset(fences))
