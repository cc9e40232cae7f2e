"""Python source as an AST: parsed, never imported or executed.

Public API:
- `PythonModule` (defined in `python_module.py`): rel path, AST, source text.
- `parse_python(path, rel) -> PythonModule` (InputError on unreadable/invalid source).
- input kinds "python" (per .py file, kinds python + test) and "training_setup" (project:
  every training config and module together, for rules such as "no seed anywhere").
- helpers for checks: `call_name(node)`, `iter_calls(tree)`, `SEED_CALLS`, `seeds(module)`.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, input_kind
from mlaudit.inputs.notebook import MAX_NOTEBOOK_BYTES, parse_notebook
from mlaudit.inputs.python_module import PythonModule

MAX_PY_BYTES = 2 * 1024 * 1024  # larger .py files are generated code, not training scripts

# Calls that seed a random number generator (last dotted components are enough).
SEED_CALLS = frozenset({
    "manual_seed", "manual_seed_all", "seed_everything", "set_seed", "enable_full_determinism",
    "random.seed", "np.random.seed", "numpy.random.seed", "tf.random.set_seed", "seed",
    "default_rng", "RandomState", "PRNGKey", "set_random_seed", "fix_seed", "seed_all",
})  # fmt: skip


def parse_python(path: Path, rel: str, kind: str = "python") -> PythonModule:
    """Parse one file; a syntax error is an InputError naming its line."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(rel, f"cannot read: {err.strerror}") from None
    text = decode_python_bytes(raw, rel)
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as err:
        raise InputError(rel, f"line {err.lineno or 1}: invalid Python syntax: {err.msg}") from None
    except (RecursionError, MemoryError, ValueError) as err:
        raise InputError(rel, f"cannot parse: {type(err).__name__}") from None
    return PythonModule(path, rel, tree, text, kind)


def decode_python_bytes(raw: bytes, rel: str) -> str:
    """Source text decoded as Python does (PEP 263: a `coding:` declaration in the first two
    lines, else UTF-8); InputError naming the problem when the bytes do not decode."""
    from mlaudit.inputs.yaml_lines import decode_config_bytes

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as err:
        raise InputError(rel, f"line 1: {err.msg if hasattr(err, 'msg') else err}") from None
    if encoding in ("utf-8", "utf-8-sig"):
        return decode_config_bytes(raw, rel)
    if b"\x00" in raw[:8192]:
        raise InputError(rel, "NUL byte: binary data, not Python source")
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise InputError(rel, f"not valid {encoding} as its coding declaration says ({err})") from None


def call_name(node: ast.AST) -> str:
    """Dotted name of a call's function (`torch.load`, `model.forward`), '' if not a name."""
    func = node.func if isinstance(node, ast.Call) else node
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    elif isinstance(func, ast.Call):
        inner = call_name(func)
        parts.append(inner + "()" if inner else "")
    else:
        return ""
    return ".".join(reversed(parts))


def iter_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_seed_call(call: ast.Call) -> bool:
    name = call_name(call)
    last = name.rsplit(".", 1)[-1]
    if name in SEED_CALLS or last in SEED_CALLS - {"seed"}:
        return True
    return name.endswith(".seed") and ("random" in name or name.startswith(("np.", "numpy.")))


def seed_lines(module: PythonModule) -> list[int]:
    """Lines of seeding calls in a module."""
    return [c.lineno for c in iter_calls(module.tree) if is_seed_call(c)]


def is_training_script(module: PythonModule) -> bool:
    """A module that trains: calls `.backward()` and `.step()`, or `.fit(` / `.train()` of a Trainer."""
    names = {call_name(c).rsplit(".", 1)[-1] for c in iter_calls(module.tree)}
    if {"backward", "step"} <= names:
        return True
    return any(call_name(c).endswith(("trainer.fit", "trainer.train", "Trainer().fit"))
               for c in iter_calls(module.tree))


def imported_modules(module: PythonModule) -> set[str]:
    """Dotted names a module imports; relative imports (`from .utils import x`, `from . import
    utils`) are resolved against the module's own package."""
    out: set[str] = set()
    package = module.module_name.split(".")
    if not module.rel.endswith("__init__.py"):
        package = package[:-1]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level and node.level - 1 <= len(package):
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
    return out


@dataclass(frozen=True)
class TrainingSetup:
    """Every training config and Python module of a scan root, for cross-file rules."""

    configs: tuple[Any, ...]  # TrainingConfig
    modules: tuple[PythonModule, ...]

    def module(self, name: str) -> PythonModule | None:
        return next((m for m in self.modules if m.module_name == name), None)

    def reachable(self, start: PythonModule, limit: int = 200) -> list[PythonModule]:
        """`start` plus the project modules it imports, transitively."""
        seen = {start.rel: start}
        todo = [start]
        while todo and len(seen) < limit:
            current = todo.pop()
            for name in imported_modules(current):
                found = self.module(name)
                if found is not None and found.rel not in seen:
                    seen[found.rel] = found
                    todo.append(found)
        return list(seen.values())


@input_kind("python", scope="file", file_kinds=("python", "test", "notebook"))
def load_python(session, file) -> PythonModule | None:
    """A .py file's AST, or a notebook's code cells as one module (mlaudit/inputs/notebook.py);
    oversized files are skipped in directory scans."""
    if file.kind == "notebook":
        if file.size > MAX_NOTEBOOK_BYTES:
            if session.single_file:
                raise InputError(file.rel, f"too large to analyse (over {MAX_NOTEBOOK_BYTES // 2**20} MB)")
            return None
        return parse_notebook(file.path, file.rel)
    if file.size > MAX_PY_BYTES:
        if session.single_file:
            raise InputError(file.rel, f"too large to analyse (over {MAX_PY_BYTES // (1024 * 1024)} MB)")
        return None
    return parse_python(file.path, file.rel, file.kind)


@input_kind("training_setup", scope="project")
def load_training_setup(session, _file) -> TrainingSetup:
    """All configs and modules; files that fail to parse are left out (reported as MLA002)."""
    configs, modules = [], []
    for f in session.files:
        try:
            if f.kind == "config":
                cfg = session.get("training_config", f)
                if cfg is not None:
                    configs.append(cfg)
            elif f.kind in ("python", "test", "notebook"):
                mod = session.get("python", f)
                if mod is not None:
                    modules.append(mod)
        except InputError:
            continue
    return TrainingSetup(tuple(configs), tuple(modules))
