"""Fix hints for code findings written as the corrected call itself, built from the call as the
user wrote it (its own arguments, not `...` or `path`), so the hint can replace the flagged
expression as is."""

from __future__ import annotations

import ast
import copy


def with_keyword(call: ast.Call, name: str, value: str) -> str:
    """`call` as source with keyword `name=value` set (replacing the one written, if any).
    A call that passes `**kwargs` keeps them last."""
    new = copy.deepcopy(call)
    expr = ast.parse(value, mode="eval").body
    kept = [k for k in new.keywords if k.arg != name]
    named = [k for k in kept if k.arg is not None]
    spread = [k for k in kept if k.arg is None]
    new.keywords = [*named, ast.keyword(arg=name, value=expr), *spread]
    return ast.unparse(new)


def with_first_arg(call: ast.Call, value: str) -> str:
    """`call` as source with its first positional argument replaced by `value`."""
    new = copy.deepcopy(call)
    expr = ast.parse(value, mode="eval").body
    new.args = [expr, *new.args[1:]] if new.args else [expr]
    return ast.unparse(new)
