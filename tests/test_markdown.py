"""README / model-card structure from markdown-it-py, plus the README heading heuristics."""

from __future__ import annotations

from mlaudit.checks._text import headings, prose_words
from mlaudit.inputs.markdown import outline

DOC = """# Title

Intro words here.

```python
# not a heading
x = 1
```

~~~
## also not a heading
~~~

    # indented code, not a heading

Usage
=====

- item

  ## Nested heading

**Bold Section**

<h2>Html Heading</h2>

Install
-------
"""


def test_headings_skip_code_blocks_and_keep_markdown_and_readme_styles():
    found = [(h.text, h.line) for h in headings(DOC)]
    assert found == [("title", 1), ("usage", 16), ("nested heading", 21), ("bold section", 23),
                     ("html heading", 25), ("install", 27)]


def test_outline_marks_fences_and_code_lines():
    structure = outline(DOC)
    assert {4, 5, 6, 7, 9, 10, 11, 13} <= structure.code_lines
    assert {4, 7, 9, 11} == set(structure.fence_lines)
    assert [h.level for h in structure.headings] == [1, 1, 2, 2]


def test_prose_words_leave_code_out():
    assert prose_words("Two words.\n\n```\nlots of code words here\n```\n") == 2


def test_unclosed_fence_runs_to_the_end():
    text = "# A\n\n```\n# inside\n"
    assert [h.text for h in headings(text)] == ["a"]
