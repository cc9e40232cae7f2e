"""The import contract between mlaudit's layers, checked on the source text (nothing is imported).

The contract lives in pyproject.toml (`[tool.mlaudit.import-contract]`): each layer names the
layers it may import. Every `import` in every module counts — at module level, inside
functions, under `if TYPE_CHECKING:` — and so does a string constant naming a package module
(the registration tables that `importlib` loads lazily). Imports that run (all but the
TYPE_CHECKING ones) must also form no circle, at module granularity.

Run `python -m tests.import_contract` (as `make lint` does): one line per violation, exit 1.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Edge:
    """One import of `target` by `source` at `line`; `runtime` False for type-only imports."""

    source: str
    target: str
    line: int
    runtime: bool


def load_contract(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Any]:
    """The `[tool.mlaudit.import-contract]` table."""
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mlaudit"]["import-contract"]


def module_names(src_root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of `package` under `src_root`."""
    out = {}
    for path in sorted((src_root / package).rglob("*.py")):
        parts = path.relative_to(src_root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                for child in node.body:
                    ids.update(id(n) for n in ast.walk(child))
    return ids


def _table_strings(tree: ast.Module) -> set[int]:
    """String constants that registration tables hold (dict keys/values, tuple/list items) or
    that are passed to `import_module`: module names imported lazily."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        items: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            items = [*node.keys, *node.values]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = list(node.elts)
        elif isinstance(node, ast.Call):
            called = getattr(node.func, "attr", getattr(node.func, "id", ""))
            items = list(node.args) if called == "import_module" else []
        ids.update(id(i) for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))
    return ids


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The package module `name` refers to (itself, or its closest enclosing module)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(src_root: Path, package: str) -> Iterator[Edge]:
    """Every import between modules of `package`."""
    modules = module_names(src_root, package)
    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        type_only = _type_checking_nodes(tree)
        table_strings = _table_strings(tree)
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = source.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join([*base, node.module] if node.module else base)
                else:
                    mod = node.module or ""
                # `from pkg import sub` imports the submodule when there is one
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
            elif id(node) in table_strings and node.value in modules:
                targets = [node.value]  # a module named in a registration table (importlib)
            for target in targets:
                resolved = _resolve(target, modules) if target.split(".")[0] == package else None
                if resolved and resolved != source:
                    yield Edge(source, resolved, getattr(node, "lineno", 0), id(node) not in type_only
                               and not isinstance(node, ast.Constant))


def layer_of(module: str, contract: Mapping[str, Any]) -> str | None:
    """The layer whose longest `modules` entry matches `module` (the root package is
    written `<package>.__init__`)."""
    key = f"{module}.__init__" if module == contract["package"] else module
    best, best_len = None, -1
    for layer, spec in contract["layers"].items():
        for entry in spec["modules"]:
            if (key == entry or key.startswith(entry + ".")) and len(entry) > best_len:
                best, best_len = layer, len(entry)
    return best


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(src_root: Path = ROOT, contract: Mapping[str, Any] | None = None) -> list[str]:
    """One line per broken rule: an upward or sideways import, an unassigned module, a circle."""
    contract = contract or load_contract()
    package = contract["package"]
    problems = []
    for module in module_names(src_root, package):
        if layer_of(module, contract) is None:
            problems.append(f"{module}: in no layer of the import contract")
    graph: dict[str, set[str]] = {}
    for edge in edges(src_root, package):
        src_layer, dst_layer = layer_of(edge.source, contract), layer_of(edge.target, contract)
        if edge.runtime:
            graph.setdefault(edge.source, set()).add(edge.target)
        if src_layer is None or dst_layer is None or src_layer == dst_layer:
            continue
        if dst_layer not in contract["layers"][src_layer]["may-import"]:
            problems.append(f"{edge.source}:{edge.line}: layer {src_layer} imports {edge.target} "
                            f"(layer {dst_layer})")
    for component in _cycles(graph):
        problems.append("import circle: " + " -> ".join(component))
    return problems


def main() -> int:
    problems = violations()
    for line in problems:
        print(line)
    if not problems:
        print("import contract: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
