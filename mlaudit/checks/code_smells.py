"""MLQ: ML code smells found in the AST (the code is never imported or run)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.python_code import PythonModule, call_name, iter_calls
from mlaudit.model import Finding, Location

LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _loop_calls(loop: ast.AST) -> list[ast.Call]:
    return list(iter_calls(loop))


def _clears_grads(loop: ast.AST, helpers: frozenset[str] = frozenset()) -> bool:
    for node in ast.walk(loop):
        if isinstance(node, ast.Call):
            name = call_name(node)
            if _last(name) == "zero_grad" or name in helpers:
                return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == "grad" for t in node.targets
        ):
            return True  # p.grad = None
    return False


def _grad_clearing_helpers(tree: ast.AST) -> frozenset[str]:
    """Names of the module's functions (nested ones and methods as `self.name`) that clear
    gradients themselves, so a loop calling `reset()` / `self.reset_grads()` clears them too."""
    names: set[str] = set()
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for _ in range(3):  # helpers calling helpers, a few levels deep
        for f in funcs:
            if f.name not in names and _clears_grads(f, frozenset(names | {f"self.{n}" for n in names})):
                names.add(f.name)
    return frozenset(names | {f"self.{n}" for n in names})


def _backward_and_step(loop: ast.AST) -> tuple[ast.Call, ast.Call] | None:
    calls = _loop_calls(loop)
    backward = next((c for c in calls if _last(call_name(c)) == "backward"), None)
    steps = [c for c in calls if _last(call_name(c)) == "step" and isinstance(c.func, ast.Attribute)]
    if backward is None or not steps:
        return None
    # DeepSpeed-style engines (`engine.backward(loss); engine.step()`) clear gradients themselves.
    if backward.args and isinstance(backward.func, ast.Attribute):
        owner = call_name(backward.func.value)
        if any(call_name(s.func.value) == owner for s in steps if isinstance(s.func, ast.Attribute)):
            return None
    step = next((s for s in steps if "sched" not in call_name(s).lower()), None)
    return (backward, step) if step is not None else None


@rule("MLQ001", needs="python")
def missing_zero_grad(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    helpers = _grad_clearing_helpers(module.tree)
    for loop in ast.walk(module.tree):
        if not isinstance(loop, LOOPS):
            continue
        pair = _backward_and_step(loop)
        if pair is None:
            continue
        inner = [n for n in ast.walk(loop)
                 if n is not loop and isinstance(n, LOOPS) and _backward_and_step(n)]
        if inner:
            continue  # report the innermost training loop only
        if _clears_grads(loop, helpers):
            continue
        backward, step = pair
        yield ctx.finding(
            f"loop calls backward() (line {backward.lineno}) and {call_name(step)}() (line {step.lineno}) "
            "but never zero_grad(): gradients accumulate across iterations",
            Location(module.rel, loop.lineno),
            evidence={"backward_line": backward.lineno, "step_line": step.lineno},
            key=f"loop@{call_name(step)}",
        )


EVAL_NAME = re.compile(r"^(eval|evaluate|evaluation|validate|validation|valid|test|predict|inference|infer)"
                       r"($|_(?!step$))|(_|^)(eval|evaluate|validate|validation|predict|inference)$")
MODEL_NAMES = re.compile(r"(^|\.)(model|net|network|module|encoder|classifier)$", re.I)
NO_GRAD = ("no_grad", "inference_mode", "enable_grad")


def _uses_no_grad(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in func.decorator_list:
        if _last(call_name(deco) if isinstance(deco, ast.Call) else call_name(deco)) in NO_GRAD:
            return True
    for node in ast.walk(func):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = item.context_expr
                name = call_name(expr) if isinstance(expr, ast.Call) else call_name(expr)
                if _last(name) in NO_GRAD:
                    return True
    return False


@rule("MLQ002", needs="python")
def eval_without_eval_mode(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return  # pytest functions named test_*/test are not evaluation loops
    for func in ast.walk(module.tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) or not EVAL_NAME.search(func.name):
            continue
        calls = list(iter_calls(func))
        if not any(MODEL_NAMES.search(call_name(c)) or MODEL_NAMES.search(call_name(c).rpartition(".")[0])
                   for c in calls):
            continue  # does not run a model
        names = {_last(call_name(c)) for c in calls}
        eval_mode = "eval" in names or any(
            _last(call_name(c)) == "train" and c.args and isinstance(c.args[0], ast.Constant)
            and c.args[0].value is False for c in calls)
        checks = (("model.eval()", eval_mode), ("torch.no_grad()", _uses_no_grad(func)))
        missing = [what for what, ok in checks if not ok]
        if missing:
            yield ctx.finding(
                f"evaluation function `{func.name}` runs the model without {' or '.join(missing)}",
                Location(module.rel, func.lineno),
                evidence={"missing": missing},
                key=func.name,
            )


@rule("MLQ003", needs="python")
def direct_forward_call(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for call in iter_calls(module.tree):
        name = call_name(call)
        if not name.endswith(".forward") or name.startswith("super()") or name == "self.forward":
            continue
        owner = name[:-len(".forward")].rsplit(".", 1)[-1]
        first = call.args[0] if call.args else None
        if owner[:1].isupper() and isinstance(first, ast.Name) and first.id == "self":
            continue  # `Base.forward(self, x)`: an explicit base-class call, like super().forward(x)
        yield ctx.finding(
            f"`{name}(...)` calls forward() directly, skipping module hooks; call `{name[:-8]}(...)`",
            Location(module.rel, call.lineno),
            evidence={"call": name},
            key=f"{name}@{ast.unparse(call)[:80]}",
        )


NAN_NAMES = frozenset({"np.nan", "numpy.nan", "math.nan", "torch.nan", "np.NaN", "numpy.NaN", "np.NAN"})


def _is_nan(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and call_name(node) in NAN_NAMES:
        return True
    return (isinstance(node, ast.Call) and call_name(node) == "float" and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).lower() == "nan")


@rule("MLQ004", needs="python")
def nan_equality(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if isinstance(op, (ast.Eq, ast.NotEq)) and (_is_nan(left) or _is_nan(right)):
                always = "False" if isinstance(op, ast.Eq) else "True"
                text = ast.unparse(node)
                yield ctx.finding(
                    f"comparison `{text}` is always {always}: NaN never equals anything; use isnan()",
                    Location(module.rel, node.lineno),
                    evidence={"operator": type(op).__name__},
                    key=text,
                )
