"""Python config modules (mmengine / mmcv style: module-level `name = dict(...)` assignments and a
`_base_` list) read with `ast` and literal evaluation - never imported, never executed.

- `read_python_config(path, rel)`: a ConfigDoc (data, key -> line) and why it is a config, or None
  when the module is not such a config (it imports something, assigns attributes, defines
  functions: detectron2 LazyConfig and new-style mmengine `read_base()` modules are code).
- `merge_python_bases(path, rel, doc)`: the `_base_` chain merged as mmengine's Config does
  (bases in order, the file's own values over them, `_delete_=True` replacing instead of
  merging), each key remembering the file and line it was written in.

A value that is not a literal (a function call other than `dict`, an attribute, a comprehension)
is left out: unknown, never guessed.
"""

from __future__ import annotations

import ast
import copy
import posixpath
import re
from pathlib import Path
from typing import Any

from mlaudit.inputs.yaml_lines import MAX_BYTES, ConfigDoc

# Top-level names mmengine (1.x) and mmcv (0.x/1.x) runners read from a config module.
MMENGINE_NAMES = frozenset({
    "optim_wrapper", "optimizer", "optimizer_config", "param_scheduler", "lr_config", "train_cfg",
    "val_cfg", "test_cfg", "default_hooks", "randomness", "env_cfg", "train_dataloader",
    "val_dataloader", "test_dataloader", "val_evaluator", "runner", "auto_scale_lr", "load_from",
    "resume", "default_scope", "checkpoint_config", "log_config", "workflow", "total_epochs",
    "custom_hooks", "log_processor", "visualizer", "data_preprocessor",
})  # fmt: skip
# cheap pre-check before parsing: a module-level assignment to one of the names above or `_base_`
_HINT = re.compile(r"^(_base_|" + "|".join(sorted(MMENGINE_NAMES)) + r")\s*=", re.M)
_MAX_BASES = 16
_MAX_DEPTH = 5


class _NotLiteral(Exception):
    """A value that only running the module could give."""


class _Reader:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {}
        self.lines: dict[str, int] = {}

    def value(self, node: ast.AST, path: str) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                raise _NotLiteral(node.id)
            return copy.deepcopy(self.env[node.id])
        if isinstance(node, (ast.List, ast.Tuple)):
            out = []
            for i, item in enumerate(node.elts):
                sub = f"{path}.{i}"
                self.lines.setdefault(sub, item.lineno)
                out.append(self.value(item, sub))
            return out
        if isinstance(node, ast.Dict):
            pairs: list[tuple[Any, int, ast.AST]] = []
            for k, v in zip(node.keys, node.values, strict=True):
                if not isinstance(k, ast.Constant) or not isinstance(k.value, (str, int, float)):
                    raise _NotLiteral("dict key")
                pairs.append((str(k.value), k.lineno, v))
            return self._mapping(pairs, path)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            if node.args or any(kw.arg is None for kw in node.keywords):
                raise _NotLiteral("dict(*args/**kwargs)")
            return self._mapping([(kw.arg, kw.value.lineno, kw.value) for kw in node.keywords], path)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.value(node.operand, path)
            if isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return self._arith(node, path)
        raise _NotLiteral(type(node).__name__)

    def _mapping(self, pairs: list[tuple[Any, int, ast.AST]], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, line, node in pairs:
            sub = f"{path}.{key}"
            self.lines[sub] = line
            out[str(key)] = self.value(node, sub)
        return out

    def _arith(self, node: ast.BinOp, path: str) -> Any:
        # `lr=0.1 * 4`, `max_epochs * 2`: plain numbers only, exponents bounded (no 10**10**10)
        left, right = self.value(node.left, path), self.value(node.right, path)
        nums = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (left, right))
        if nums:
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            if isinstance(node.op, ast.Div) and right:
                return left / right
            if isinstance(node.op, ast.FloorDiv) and right:
                return left // right
            if isinstance(node.op, ast.Pow) and abs(right) <= 64 and abs(left) <= 1e6:
                return left ** right
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            return left + right
        raise _NotLiteral("arithmetic")


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def may_be_config_source(text: str) -> bool:
    """False when `text` cannot be a config module (read_python_config would return None
    without parsing): no line assigns `_base_` or an mmengine name."""
    return _HINT.search(text) is not None


def parse_python_config(text: str) -> tuple[dict[str, Any], dict[str, int]] | None:
    """Module-level literal assignments of a config module, or None when it is code."""
    if not may_be_config_source(text):
        return None
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    reader = _Reader()
    data: dict[str, Any] = {}
    for stmt in tree.body:
        if _is_docstring(stmt):
            continue
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            return None  # imports, attribute assignments, functions, loops: a program, not a config
        target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            return None
        name = target.id
        reader.lines[name] = stmt.lineno
        try:
            value = reader.value(stmt.value, name)
        except (_NotLiteral, RecursionError, OverflowError, ZeroDivisionError):
            reader.env.pop(name, None)
            data.pop(name, None)
            continue
        reader.env[name] = value
        data[name] = value
    names = set(data) & MMENGINE_NAMES
    if "_base_" not in data and len(names) < 2:
        return None
    return data, reader.lines


def read_python_config(path: Path, rel: str) -> tuple[ConfigDoc, str] | None:
    """The config a Python module declares, with why it counts as one; None when it is code."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_BYTES:
        return None
    text = raw.decode("utf-8", errors="replace")
    parsed = parse_python_config(text)
    if parsed is None:
        return None
    data, lines = parsed
    names = sorted(set(data) & MMENGINE_NAMES)[:3]
    why = "mmengine config module: " + ", ".join(
        (["`_base_`"] if "_base_" in data else []) + [f"`{n}`" for n in names])
    return ConfigDoc(data, lines, (), text), why


def _bases(data: dict[str, Any]) -> list[str]:
    ref = data.get("_base_")
    refs = [ref] if isinstance(ref, str) else ref if isinstance(ref, list) else []
    return [r for r in refs if isinstance(r, str) and r.endswith(".py")][:_MAX_BASES]


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    """mmengine's merge: dicts merge key by key unless the new one says `_delete_=True`;
    anything else (lists included) replaces."""
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and not value.get("_delete_"):
            _merge(into[key], value)
        else:
            into[key] = ({k: v for k, v in value.items() if k != "_delete_"}
                         if isinstance(value, dict) else value)


def merge_python_bases(path: Path, rel: str, doc: ConfigDoc,
                       depth: int = 0, seen: frozenset[Path] = frozenset()) -> tuple[dict, dict, dict] | None:
    """(data, key -> line, key -> file for inherited keys) with the `_base_` chain merged, or
    None when the file names no base that can be read. Bases are only read, never run."""
    if depth >= _MAX_DEPTH or not isinstance(doc.data, dict):
        return None
    seen = seen | {path.resolve()}
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}
    files: dict[str, str] = {}
    found = False
    for ref in _bases(doc.data):
        base_path = (path.parent / ref).resolve()
        if base_path in seen or not base_path.is_file():
            continue  # a cycle, or a base outside what we can read: judged as written
        base_rel = posixpath.normpath(posixpath.join(posixpath.dirname(rel), ref))
        got = read_python_config(base_path, base_rel)
        if got is None:
            continue
        base, _ = got
        found = True
        nested = merge_python_bases(base_path, base_rel, base, depth + 1, seen)
        if nested is None:
            b_data = {k: v for k, v in base.data.items() if k != "_base_"}
            b_lines, b_files = dict(base.lines), {k: base_rel for k in base.lines}
        else:
            b_data, b_lines, b_files = nested
            for key in b_lines:
                b_files.setdefault(key, base_rel)
        _merge(data, b_data)
        lines.update(b_lines)
        files.update(b_files)
    if not found:
        return None
    _merge(data, {k: v for k, v in doc.data.items() if k != "_base_"})
    for key, line in doc.lines.items():
        lines[key] = line
        files.pop(key, None)
    return data, lines, files
