"""MLQ: ML code smells found in the AST (the code is never imported or run)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from mlaudit.checks._hints import with_first_arg, with_keyword
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.code_index import CallSite, CodeIndex, call_name
from mlaudit.inputs.python_code import PythonModule
from mlaudit.model import Finding, Location


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _within(node: ast.AST, outer: ast.AST) -> bool:
    """Whether `node` lies inside `outer`'s source span."""
    return outer.lineno <= node.lineno <= (outer.end_lineno or outer.lineno)


def _grad_assign_lines(module: PythonModule) -> list[ast.Assign]:
    """`p.grad = None` style assignments (they clear gradients like zero_grad)."""
    return [n for n in module.index.assigns
            if any(isinstance(t, ast.Attribute) and t.attr == "grad" for t in n.targets)]


def _clears_grads(index: CodeIndex, scope: ast.AST, grad_assigns: list[ast.Assign],
                  helpers: frozenset[str] = frozenset()) -> bool:
    if any(c.last == "zero_grad" or c.name in helpers for c in index.calls_in(scope)):
        return True
    return any(_within(a, scope) for a in grad_assigns)


def _grad_clearing_helpers(index: CodeIndex, grad_assigns: list[ast.Assign]) -> frozenset[str]:
    """Names of the module's functions (nested ones and methods as `self.name`) that clear
    gradients themselves, so a loop calling `reset()` / `self.reset_grads()` clears them too."""
    names: set[str] = set()
    for _ in range(3):  # helpers calling helpers, a few levels deep
        known = frozenset(names | {f"self.{n}" for n in names})
        for f in index.functions:
            if f.name not in names and _clears_grads(index, f, grad_assigns, known):
                names.add(f.name)
    return frozenset(names | {f"self.{n}" for n in names})


def _backward_and_step(calls: list[CallSite]) -> tuple[CallSite, CallSite] | None:
    backward = next((c for c in calls if c.last == "backward"), None)
    steps = [c for c in calls if c.last == "step" and isinstance(c.node.func, ast.Attribute)]
    if backward is None or not steps:
        return None
    # DeepSpeed-style engines (`engine.backward(loss); engine.step()`) clear gradients themselves.
    if backward.node.args and isinstance(backward.node.func, ast.Attribute):
        owner = call_name(backward.node.func.value)
        if any(call_name(s.node.func.value) == owner for s in steps):
            return None
    step = next((s for s in steps if "sched" not in s.name.lower()), None)
    return (backward, step) if step is not None else None


def _distributed_autograd(index: CodeIndex, loop: ast.AST, calls: list[CallSite]) -> bool:
    """Inside a distributed-autograd context gradients live per context (`dist_autograd.context()`),
    so nothing accumulates across iterations and zero_grad is not needed."""
    if any("dist_autograd" in c.name or c.resolved.startswith("torch.distributed.autograd") for c in calls):
        return True
    return any(_within(loop, w) and any("dist_autograd" in c.name for c in index.calls_in(w)
                                          if c.line == w.lineno) for w in index.withs)


@rule("MLQ001", needs="python")
def missing_zero_grad(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    index = module.index
    grad_assigns: list[ast.Assign] | None = None
    helpers: frozenset[str] = frozenset()
    for loop in index.loops:
        calls = index.calls_in(loop)
        pair = _backward_and_step(calls)
        if pair is None:
            continue
        if any(_backward_and_step(index.calls_in(inner)) for inner in index.inner_loops(loop)):
            continue  # report the innermost training loop only
        if any(c.last == "zero_grad" for c in calls):
            continue  # the common case, decided before the module's helpers are worked out
        if grad_assigns is None:  # only for a training loop that does not call zero_grad itself
            grad_assigns = _grad_assign_lines(module)
            helpers = _grad_clearing_helpers(index, grad_assigns)
        if _clears_grads(index, loop, grad_assigns, helpers) or _distributed_autograd(index, loop, calls):
            continue
        backward, step = pair
        yield ctx.finding(
            f"loop calls backward() (line {backward.line}) and {step.name}() (line {step.line}) "
            "but never zero_grad(): gradients accumulate across iterations",
            Location(module.rel, loop.lineno),
            evidence={"backward_line": backward.line, "step_line": step.line},
            key=f"loop@{step.name}",
        )


EVAL_NAME = re.compile(r"^(eval|evaluate|evaluation|validate|validation|valid|test|predict|inference|infer)"
                       r"($|_(?!step$))|(_|^)(eval|evaluate|validate|validation|predict|inference)$")
# Names that only a shape smoke test or a checker carries, never an evaluation loop.
NOT_EVAL = re.compile(r"(config|args|cfg|params|inputs?|shapes?|device|meta|keys|schema|path|url|file)s?$",
                      re.I)
MODEL_NAMES = re.compile(r"(^|\.)(model|net|network|module|encoder|classifier)$", re.I)
MODEL_METHODS = frozenset({"generate", "forward", "predict", "sample"})
NO_GRAD = ("no_grad", "inference_mode", "enable_grad")


def _runs_model(calls: list[CallSite]) -> bool:
    """A call of the model itself (`model(x)`, `self.net(x)`) or of its inference methods
    (`model.generate(...)`); `cfg.model.get(...)` or `build_model(...)` do not count."""
    for c in calls:
        if MODEL_NAMES.search(c.name):
            return True
        owner, _, method = c.name.rpartition(".")
        if method in MODEL_METHODS and MODEL_NAMES.search(owner):
            return True
    return False


def _sets_eval(calls: list[CallSite]) -> bool:
    return any(c.last == "eval" and not c.node.args or (
        c.last == "train" and c.node.args and isinstance(c.node.args[0], ast.Constant)
        and c.node.args[0].value is False) for c in calls)


def _uses_no_grad(index: CodeIndex, func: ast.AST) -> bool:
    for deco in getattr(func, "decorator_list", []):
        if _last(call_name(deco)) in NO_GRAD:
            return True
    for w in index.withs:
        if _within(w, func) and any(_last(call_name(item.context_expr)) in NO_GRAD for item in w.items):
            return True
    return False


def _callers_cover(index: CodeIndex, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Every call of `func` in the module comes after a `.eval()` (or inside no_grad) in its
    enclosing function or at module level (an earlier notebook cell counts), and there is one."""
    sites = [c for c in index.calls if c.name in (func.name, f"self.{func.name}")]
    if not sites:
        return False
    for site in sites:
        outer = index.enclosing_function.get(id(site.node))
        around = index.calls_in(outer) if outer is not None else index.top_level_calls
        before = [c for c in around if c.line <= site.line]
        covered = _sets_eval(before) or any(
            _within(site.node, w) and any(_last(call_name(i.context_expr)) in NO_GRAD for i in w.items)
            for w in index.withs)
        if not covered:
            return False
    return True


@rule("MLQ002", needs="python")
def eval_without_eval_mode(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return  # pytest functions named test_*/test are not evaluation loops
    index = module.index
    module_eval_lines = [c.line for c in index.top_level_calls if _sets_eval([c])]
    for func in index.functions:
        if not EVAL_NAME.search(func.name) or NOT_EVAL.search(func.name):
            continue
        calls = index.calls_in(func)
        if not _runs_model(calls):
            continue  # does not run a model
        if func.name.startswith("test") and not any(_within(loop, func) for loop in index.loops):
            continue  # a `test()` without a loop over data is a smoke check of shapes
        no_grad = _uses_no_grad(index, func)
        eval_mode = _sets_eval(calls) or any(line < func.lineno for line in module_eval_lines)
        if no_grad and not eval_mode:
            continue  # gradients are off; eval() is the caller's (or an earlier cell's) business
        if not (eval_mode and no_grad) and _callers_cover(index, func):
            continue
        checks = (("model.eval()", eval_mode), ("torch.no_grad()", no_grad))
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
    for site in module.index.calls:
        name, call = site.name, site.node
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
    for node in module.index.compares:
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


# Names that hold a whole nn.Module in training code (GAN pairs included).
WHOLE_MODEL = re.compile(r"(^|_)(model|net|network|generator|discriminator|encoder|decoder|classifier)$",
                         re.I)


def _model_expr(node: ast.AST | None) -> str | None:
    """`model`, `self.net`, `netG` ... as written, when the expression names a module object."""
    if not isinstance(node, (ast.Name, ast.Attribute)):
        return None
    text = call_name(node)
    last = text.rsplit(".", 1)[-1]
    return text if WHOLE_MODEL.search(last) or re.fullmatch(r"net[A-Z]\w*|model_\w+", last) else None


# Values that are never a module: containers and what state_dict()/dict() return.
_NOT_A_MODULE = (ast.Dict, ast.DictComp, ast.List, ast.ListComp, ast.Tuple, ast.Set, ast.Constant)
_STATE_CALLS = ("state_dict", "dict", "OrderedDict")


def _bound_to_non_module(index: CodeIndex, target: str, line: int) -> bool:
    """Whether the name saved was last bound, in the same function (or module) before `line`,
    to a container literal or a state dict: `model_to_save = {"model": sd}` is named like a
    model but holds none. Only the binding's value counts, never the name."""
    scope = index.function_at(line)
    bindings = [a for a in index.assigns if a.lineno < line
                and any(call_name(t) == target for t in a.targets)
                and (scope is None or _within(a, scope))]
    if not bindings:
        return False
    value = max(bindings, key=lambda a: a.lineno).value
    if isinstance(value, _NOT_A_MODULE):
        return True
    return isinstance(value, ast.Call) and _last(call_name(value)) in _STATE_CALLS


@rule("MLQ005", needs="python")
def whole_model_pickled(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    index = module.index
    for site in index.calls:
        if site.resolved != "torch.save" and site.name != "torch.save":
            continue
        target = _model_expr(site.node.args[0] if site.node.args else None)
        if target is None or _bound_to_non_module(index, target, site.line):
            continue
        yield ctx.finding(
            f"`{site.name}({target}, ...)` pickles the whole module: loading it needs the same class at "
            "the same import path and runs pickle (no weights_only)",
            Location(module.rel, site.line),
            evidence={"object": target},
            key=f"save@{target}",
            fix_hint=with_first_arg(site.node, f"{target}.state_dict()"),
        )
    for node in index.assigns:
        value = node.value
        loaders = ("torch.load", index.resolve_back("torch.load"))
        if not (isinstance(value, ast.Call) and call_name(value) in loaders):
            continue
        targets = [_model_expr(t) for t in node.targets]
        target = next((t for t in targets if t), None)
        if target is None:
            continue
        yield ctx.finding(
            f"`{target} = {call_name(value)}(...)` loads a whole pickled module instead of a state dict",
            Location(module.rel, node.lineno),
            evidence={"object": target},
            key=f"load@{target}",
            fix_hint=f"{target}.load_state_dict({with_keyword(value, 'weights_only', 'True')})",
        )


@rule("MLQ006", needs="python")
def non_strict_load_ignored(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return  # tests load partial state dicts on purpose and compare the result themselves
    for site in module.index.expr_calls:
        if site.last != "load_state_dict":
            continue
        strict = next((k.value for k in site.node.keywords if k.arg == "strict"), None)
        if not (isinstance(strict, ast.Constant) and strict.value is False):
            continue
        yield ctx.finding(
            f"`{site.name}(..., strict=False)` discards the missing/unexpected keys it returns: a "
            "checkpoint that matches nothing still loads without a word",
            Location(module.rel, site.line),
            evidence={"call": site.name},
            key=f"{site.name}@{ast.unparse(site.node)[:80]}",
            fix_hint=f"result = {ast.unparse(site.node)}; assert not result.missing_keys, result",
        )
