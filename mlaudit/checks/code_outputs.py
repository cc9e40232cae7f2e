"""MLQ007: files written by `torch.save` under a name that promises another format."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.code_index import call_name
from mlaudit.inputs.python_code import PythonModule, keyword
from mlaudit.model import Finding, Location

# Suffixes of formats torch.save never writes: images, text and tabular files, numpy arrays.
FOREIGN_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff",
    ".json", ".txt", ".csv", ".yaml", ".yml", ".npy", ".npz",
)  # fmt: skip


def _name_literal(node: ast.AST | None) -> ast.Constant | None:
    """The string literal that ends a path expression as written: `'a.png'`, the tail of an
    f-string, the right side of `dir / 'x.png'` or `a + '.png'`, the last part of
    `os.path.join(...)`, the argument of `str(...)`/`Path(...)`. None when it ends otherwise."""
    for _ in range(8):
        if isinstance(node, ast.Constant):
            return node if isinstance(node.value, str) else None
        if isinstance(node, ast.JoinedStr):
            node = node.values[-1] if node.values else None
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Add)):
            node = node.right
        elif isinstance(node, ast.Call) and node.args and \
                call_name(node).rsplit(".", 1)[-1] in ("str", "Path", "PurePath", "join", "fspath"):
            node = node.args[-1]
        else:
            return None
    return None


def _with_suffix(call: ast.Call, target: ast.Constant, suffix: str) -> str:
    """The call as source with the path literal's foreign suffix replaced by `.pt`."""
    new = copy.deepcopy(call)
    for node in ast.walk(new):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value == target.value \
                and (node.lineno, node.col_offset) == (target.lineno, target.col_offset):
            node.value = node.value[: -len(suffix)] + ".pt"
    return ast.unparse(new)


@rule("MLQ007", needs="python")
def tensor_saved_under_foreign_suffix(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for site in module.index.calls:
        if "torch.save" not in (site.resolved, site.name):
            continue
        call = site.node
        path = call.args[1] if len(call.args) > 1 else keyword(call, "f")
        literal = _name_literal(path)
        if literal is None:
            continue
        name = str(literal.value).lower()
        suffix = next((s for s in FOREIGN_SUFFIXES if name.endswith(s)), None)
        if suffix is None:
            continue
        shown = ast.unparse(path) if path is not None else "?"
        yield ctx.finding(
            f"`{site.name}` writes a pickle into {shown}, a {suffix} name: tools that open it as "
            f"{suffix[1:]} fail, and whoever loads it back runs pickle on a file that looks like data",
            Location(module.rel, site.line),
            evidence={"suffix": suffix, "path": shown},
            key=f"{suffix}@{shown[:80]}",
            fix_hint=_with_suffix(call, literal, suffix),
        )
