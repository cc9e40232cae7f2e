"""One walk over a module's AST, shared by every code rule (dispatch by node type).

Code rules used to call `ast.walk` themselves, once per rule and again per loop or function
they inspected, so a scan walked each tree a dozen times or more (quadratically for nested
loops). `CodeIndex` walks it once and keeps what the rules ask about: calls with their dotted
names (as written and resolved through the module's imports), function and loop nodes with
the calls inside each, comparisons, `with` items, expression statements, module-level
constants and the names the module defines itself. `PythonModule.index` builds it lazily,
once per module.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

LOOP_TYPES = (ast.For, ast.AsyncFor, ast.While)
FUNC_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
# Nodes whose enclosed calls the index lists per node: functions, loops, `with` blocks.
SCOPE_TYPES = (*FUNC_TYPES, *LOOP_TYPES, ast.With, ast.AsyncWith)


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


@dataclass(frozen=True)
class CallSite:
    """A call: the node, its dotted name as written, and that name with the first component
    replaced by what the module imported under it (`th.load` -> `torch.load`,
    `AutoModel.from_pretrained` -> `transformers.AutoModel.from_pretrained`)."""

    node: ast.Call
    name: str
    resolved: str

    @property
    def last(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def line(self) -> int:
        return self.node.lineno


@dataclass
class CodeIndex:
    """What code rules need from one module, gathered in a single walk."""

    aliases: dict[str, str] = field(default_factory=dict)  # local name -> imported dotted name
    imported: set[str] = field(default_factory=set)  # dotted modules/names imported (absolute)
    relative_imports: list[ast.ImportFrom] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=list)
    classes: list[ast.ClassDef] = field(default_factory=list)
    loops: list[ast.AST] = field(default_factory=list)
    compares: list[ast.Compare] = field(default_factory=list)
    withs: list[ast.With | ast.AsyncWith] = field(default_factory=list)
    expr_calls: list[CallSite] = field(default_factory=list)  # calls whose result is discarded
    ifs: list[ast.If] = field(default_factory=list)
    assigns: list[ast.Assign] = field(default_factory=list)
    constants: dict[str, ast.expr] = field(default_factory=dict)  # module-level NAME = value
    defined: set[str] = field(default_factory=set)  # functions and classes the module defines
    has_main_guard: bool = False
    top_level_calls: list[CallSite] = field(default_factory=list)  # calls outside any def/class
    # id(scope node) -> calls anywhere inside it (functions, loops, with blocks)
    scope_calls: dict[int, list[CallSite]] = field(default_factory=dict)
    # id(call node) -> the innermost function enclosing it (None at module level)
    enclosing_function: dict[int, ast.AST | None] = field(default_factory=dict)
    # names the code defines as class fields or options, or reads as keys/attributes
    # (mlaudit.inputs.config_keys_in_code), gathered in the same walk
    config_names: set[str] = field(default_factory=set)

    def function_at(self, line: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The innermost function whose source span holds `line`, None at module level."""
        return min((f for f in self.functions if f.lineno <= line <= (f.end_lineno or f.lineno)),
                   key=lambda f: (f.end_lineno or f.lineno) - f.lineno, default=None)

    def resolve(self, name: str) -> str:
        """`name` with its first component replaced by the imported name it stands for."""
        head, _, rest = name.partition(".")
        full = self.aliases.get(head)
        if full is None:
            return name
        return f"{full}.{rest}" if rest else full

    def resolve_back(self, full: str) -> str:
        """The name under which the module refers to `full` (`torch.load` -> `th.load` after
        `import torch as th`); `full` itself when no alias applies."""
        head, _, rest = full.partition(".")
        for local, target in self.aliases.items():
            if target == head and local != head:
                return f"{local}.{rest}" if rest else local
        return full

    def calls_in(self, scope: ast.AST) -> list[CallSite]:
        """Calls anywhere inside a function, loop or `with` block of this module."""
        return self.scope_calls.get(id(scope), [])

    def imports_from(self, *packages: str) -> bool:
        """Whether the module imports anything from one of `packages` (top-level names)."""
        return any(m.split(".", 1)[0] in packages for m in self.imported)

    def inner_loops(self, loop: ast.AST) -> Iterator[ast.AST]:
        """Loops nested inside `loop` (by source span, from the index: no new walk)."""
        start, end = loop.lineno, loop.end_lineno or loop.lineno
        for other in self.loops:
            if other is not loop and (other.lineno, other.col_offset) > (start, loop.col_offset) \
                    and (other.end_lineno or other.lineno) <= end:
                yield other


def _record_import(index: CodeIndex, node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for a in node.names:
            index.imported.add(a.name)
            if a.asname:
                index.aliases[a.asname] = a.name
            else:
                head = a.name.split(".", 1)[0]
                index.aliases.setdefault(head, head)
        return
    if node.level:
        index.relative_imports.append(node)
        for a in node.names:
            # a project-local name: remembered as defined here, so it never looks like a library
            module = f"{node.module}." if node.module else ""
            index.aliases[a.asname or a.name] = "." * node.level + module + a.name
        return
    if node.module:
        index.imported.add(node.module)
        for a in node.names:
            if a.name == "*":
                continue
            index.imported.add(f"{node.module}.{a.name}")
            index.aliases[a.asname or a.name] = f"{node.module}.{a.name}"


# Fields that never hold a node a rule looks at: expression contexts, operators, and the
# identifier and number fields (names, attributes, import levels).
_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "type_ignores", "name", "attr", "id", "arg",
                          "module", "level", "asname", "is_async", "conversion", "simple", "kind", "tag"})
# What the walk never expands: nodes without children of interest, and the non-node values a
# field can hold (None for an absent part, identifiers in `global` lists, match constants).
_SKIP_TYPES = frozenset({ast.Constant, ast.Name, ast.Pass, ast.Break, ast.Continue, ast.alias,
                         ast.Global, ast.Nonlocal, type(None), str, int, bool, bytes, float, complex})
_LOOP_SET = frozenset(LOOP_TYPES)
_FUNC_SET = frozenset(FUNC_TYPES)
_SCOPE_SET = frozenset(SCOPE_TYPES)
_NESTING = frozenset({*FUNC_TYPES, ast.ClassDef, ast.Lambda})  # calls inside are not top-level
_CONTEXT_TYPES = _SCOPE_SET | _NESTING
# node type -> a getter of its child fields in reverse order (None: no child fields)
_GETTERS: dict[type, Callable[[ast.AST], tuple[Any, ...]] | None] = {}


def _children_getter(kind: type) -> Callable[[ast.AST], tuple[Any, ...]] | None:
    fields = tuple(f for f in reversed(kind._fields) if f not in _SKIP_FIELDS)
    getter: Callable[[ast.AST], tuple[Any, ...]] | None
    if not fields:
        getter = None
    elif len(fields) == 1:
        one = attrgetter(fields[0])

        def getter(node: ast.AST) -> tuple[Any, ...]:
            return (one(node),)
    else:
        getter = attrgetter(*fields)
    _GETTERS[kind] = getter
    return getter


def _const_str(node: ast.AST) -> str | None:
    return node.value if type(node) is ast.Constant and isinstance(node.value, str) else None


def _config_names_of_call(node: ast.Call, out: set[str]) -> None:
    """Option names an `add_argument(...)` call defines, keys a `.get("key")`-style call reads."""
    func = node.func
    name = func.attr if type(func) is ast.Attribute else getattr(func, "id", "")
    if name == "add_argument":
        for arg in node.args:
            text = _const_str(arg)
            if text and text.startswith("-"):
                out.add(text.lstrip("-").replace("-", "_"))
        out.update(v for kw in node.keywords if kw.arg == "dest" and (v := _const_str(kw.value)))
    elif name in ("get", "pop", "setdefault", "select") and node.args:
        text = _const_str(node.args[0])
        if text:
            out.update(text.split("."))


def build_index(tree: ast.Module) -> CodeIndex:
    """Walk `tree` once and gather everything in CodeIndex."""
    index = CodeIndex()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            index.constants[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            index.constants[stmt.target.id] = stmt.value
        elif isinstance(stmt, ast.If) and "__main__" in ast.dump(stmt.test):
            index.has_main_guard = True
    pending_expr: set[int] = set()
    sites: list[tuple[CallSite, tuple[ast.AST, ...]]] = []
    calls, functions, loops = index.calls, index.functions, index.loops
    config_names, enclosing = index.config_names, index.enclosing_function
    getters, skip = _GETTERS, _SKIP_TYPES
    # The context (enclosing scopes, innermost function, inside a def/class) changes only at
    # scope nodes: each pushes the context to restore (a tuple) below its children.
    scopes: tuple[ast.AST, ...] = ()
    func: ast.AST | None = None
    nested = False
    stack: list[Any] = [tree]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        kind = type(node)
        if kind in skip:
            continue
        if kind is tuple:
            scopes, func, nested = node
            continue
        # the most frequent node types first
        if kind is ast.Attribute:
            if type(node.ctx) is ast.Load:
                config_names.add(node.attr)
        elif kind is ast.Call:
            _config_names_of_call(node, config_names)
            name = call_name(node)
            site = CallSite(node, name, name)
            calls.append(site)
            sites.append((site, scopes))
            enclosing[id(node)] = func
            if id(node) in pending_expr:
                index.expr_calls.append(site)
            if not nested:
                index.top_level_calls.append(site)
        elif kind is ast.Expr:
            if type(node.value) is ast.Call:
                pending_expr.add(id(node.value))
        elif kind is ast.Import or kind is ast.ImportFrom:
            _record_import(index, node)
            continue
        elif kind is ast.Assign:
            index.assigns.append(node)
        elif kind is ast.Subscript:
            key = node.slice
            if type(key) is ast.Constant and type(key.value) is str:
                config_names.add(key.value)
        elif kind is ast.Compare:
            index.compares.append(node)
        elif kind is ast.If:
            index.ifs.append(node)
        elif kind in _FUNC_SET:
            functions.append(node)
            if not nested:
                index.defined.add(node.name)
        elif kind is ast.ClassDef:
            config_names.update(s.target.id for s in node.body
                                if type(s) is ast.AnnAssign and type(s.target) is ast.Name)
            index.classes.append(node)
            if not nested:
                index.defined.add(node.name)
        elif kind in _LOOP_SET:
            loops.append(node)
        elif kind is ast.With or kind is ast.AsyncWith:
            index.withs.append(node)
        if kind in _CONTEXT_TYPES:
            push((scopes, func, nested))
            if kind in _SCOPE_SET:
                scopes = (*scopes, node)
            if kind in _FUNC_SET:
                func = node
            if kind in _NESTING:
                nested = True
        get = getters[kind] if kind in getters else _children_getter(kind)
        if get is None:
            continue
        # fields come in reverse and each list is reversed: the stack pops in source order
        for value in get(node):
            if type(value) is list:
                extend(reversed(value))
            else:
                push(value)
    # Names resolve once every import is known: a call can come before a later (function-local)
    # import of its name.
    for site, scopes in sites:
        if site.name:
            object.__setattr__(site, "resolved", index.resolve(site.name))
        for s in scopes:
            index.scope_calls.setdefault(id(s), []).append(site)
    return index
