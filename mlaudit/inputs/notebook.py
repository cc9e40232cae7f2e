"""Jupyter notebooks as Python ASTs, so the code rules see the code that notebooks hold.

Public API: `parse_notebook(path, rel) -> PythonModule`.

Each code cell is parsed on its own (a cell that is not valid Python, e.g. unfinished work,
is left out instead of hiding every other cell), IPython syntax is blanked first (`%magic`,
`!shell`, `x = !cmd`, `obj?`; cells in another language such as `%%bash` are skipped), and
the cells' bodies are joined into one module. Line numbers are those of the `.ipynb` file:
Jupyter writes each source line as its own JSON string on its own line, so every code line is
found right after its cell's `"source":` key and the AST's line numbers are rewritten to it
(a source saved as one string maps to its key's line; a notebook not in Jupyter's layout,
e.g. minified, maps to line 1). Lookups stay within a small window, so the cost is linear in
the file size (2,000 cells, 1.5 MB: 0.3 s). Nothing is imported or executed.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from mlaudit.inputs import InputError
from mlaudit.inputs.python_module import PythonModule

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # outputs (images) make notebooks large; code is small
# Cell magics whose body is still Python; any other `%%name` cell is another language.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3"})
# `%magic`, `!shell`, `?name`, `x = !cmd` / `x = %magic`, and `name?` / `name??` help lines
# (only a bare name: a comment ending in "?" after real code is Python)
_IPY_LINE = re.compile(r"^\s*(%|!|\?)|^\s*[\w.\[\]]+\s*=\s*[!%]|^\s*[\w.\[\]()]+\?{1,2}\s*$")


def _cell_source(cell: dict) -> list[str]:
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src.splitlines(keepends=True) if isinstance(src, str) else []


def _blank_ipython(lines: list[str]) -> list[str] | None:
    """The cell's lines with IPython-only lines turned into `pass` (same indentation, so a
    block stays valid); None for a cell in another language."""
    if lines and lines[0].lstrip().startswith("%%"):
        name = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
        if name not in PYTHON_CELL_MAGICS:
            return None
        lines = ["\n", *lines[1:]]
    out = []
    for line in lines:
        if _IPY_LINE.search(line.rstrip("\n")):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}pass\n")
        else:
            out.append(line)
    return out


WINDOW = 64  # how far past the expected line a source line is looked for (keeps this linear)


def _locate(raw_lines: list[str], source: list[str], start: int) -> tuple[list[int], int]:
    """1-based file line of each source line, looked for from `start` (0-based) within a
    small window: Jupyter writes `"source": [` and then one line per string, so each line is
    found right after the previous one; a line that is not (a minified notebook, a source
    saved as one string) takes the line of the previous one."""
    targets: list[int] = []
    pos = start
    for s in source:
        needles = {json.dumps(s, ensure_ascii=False), json.dumps(s)}
        window = range(pos, min(pos + WINDOW, len(raw_lines)))
        found = next((i for i in window if any(n in raw_lines[i] for n in needles)), None)
        if found is None:
            targets.append(targets[-1] if targets else pos + 1)
            continue
        targets.append(found + 1)
        pos = found
    return targets, pos


def _source_starts(raw_lines: list[str], n_cells: int) -> list[int] | None:
    """0-based line of each cell's `"source":` key, when the file has one per cell."""
    starts = [i for i, line in enumerate(raw_lines) if line.lstrip().startswith('"source":')]
    return starts if len(starts) == n_cells else None


def _relocate(tree: ast.AST, targets: list[int]) -> None:
    for node in ast.walk(tree):
        for attr in ("lineno", "end_lineno"):
            value = getattr(node, attr, None)
            if isinstance(value, int) and targets:
                setattr(node, attr, targets[min(max(value, 1), len(targets)) - 1])


def parse_notebook(path: Path, rel: str) -> PythonModule:
    """The notebook's code cells as one module; InputError if the file is no notebook JSON."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(rel, f"cannot read: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
        nb = json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise InputError(rel, f"not a notebook: invalid JSON ({type(err).__name__})") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if cells is None and isinstance(nb, dict) and isinstance(nb.get("worksheets"), list):
        # nbformat 3: cells inside worksheets, code in `input` instead of `source`
        cells = [{**c, "source": c.get("input", "")} for ws in nb["worksheets"] if isinstance(ws, dict)
                 for c in ws.get("cells", []) if isinstance(c, dict)]
    if not isinstance(cells, list):
        raise InputError(rel, "not a notebook: no `cells` list (nbformat 4) or `worksheets` (nbformat 3)")
    raw_lines = text.splitlines()
    body: list[ast.stmt] = []
    code_parts: list[str] = []
    cells = [c for c in cells if isinstance(c, dict)]
    starts = _source_starts(raw_lines, len(cells))
    for k, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = _cell_source(cell)
        if starts is not None:
            targets, _ = _locate(raw_lines, source, starts[k])
        else:  # not Jupyter's layout (e.g. minified): no per-line positions to find
            targets = [1] * len(source)
        lines = _blank_ipython(source)
        if not lines:
            continue
        code = "".join(lines)
        try:
            tree = ast.parse(code, filename=rel)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue  # an unfinished or non-Python cell; the other cells are still checked
        _relocate(tree, targets)
        body.extend(tree.body)
        code_parts.append(code)
    module = ast.Module(body=body, type_ignores=[])
    return PythonModule(path, rel, module, "\n".join(code_parts), "notebook")
