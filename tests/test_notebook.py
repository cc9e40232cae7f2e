"""Notebook reader: code cells parsed on their own, IPython syntax blanked, .ipynb line numbers."""

from __future__ import annotations

import ast
import json

import pytest

from mlaudit.inputs import InputError
from mlaudit.inputs.notebook import parse_notebook


def _nb(cells: list[str]) -> dict:
    return {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": c.splitlines(True)}
                      for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _calls(module) -> dict[str, int]:
    return {ast.unparse(n.func): n.lineno for n in ast.walk(module.tree) if isinstance(n, ast.Call)}


def test_lines_are_the_ipynb_file_lines(tmp_path):
    path = tmp_path / "a.ipynb"
    cells = ["!pip install x\nimport torch\n", "def broken(:\n", "m = torch.load('m.pt')\n"]
    path.write_text(json.dumps(_nb(cells), indent=1))
    calls = _calls(parse_notebook(path, "a.ipynb"))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "torch.load" in text)
    assert calls == {"torch.load": line}  # the broken cell is skipped, the others are parsed


def test_minified_notebook_maps_to_its_only_line(tmp_path):
    path = tmp_path / "m.ipynb"
    path.write_text(json.dumps(_nb(["%%time\nx = 1\n", "%%bash\nrm -rf /\n", "y = f(x)\n"])))
    module = parse_notebook(path, "m.ipynb")
    assert _calls(module) == {"f": 1}
    assert "rm -rf" not in module.text  # a %%bash cell is not Python


@pytest.mark.parametrize("text", ["{not json", '{"cells": 3}', "[1, 2]"])
def test_non_notebook_json_is_an_input_error(tmp_path, text):
    path = tmp_path / "x.ipynb"
    path.write_text(text)
    with pytest.raises(InputError, match="not a notebook"):
        parse_notebook(path, "x.ipynb")


def test_nbformat_3_worksheets_are_read(tmp_path):
    nb = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "code", "input": ["import torch\n", "m = torch.load('m.pt')\n"], "outputs": []}]}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(nb, indent=1))
    assert "torch.load" in _calls(parse_notebook(path, "old.ipynb"))


def test_only_bare_help_lines_are_ipython():
    from mlaudit.inputs.notebook import _blank_ipython

    lines = ["loss.backward()  # needed?\n", "model.fit?\n", "x = !ls\n", "    %time step()\n"]
    assert _blank_ipython(lines) == ["loss.backward()  # needed?\n", "pass\n", "pass\n", "    pass\n"]
