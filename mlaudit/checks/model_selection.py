"""MLQ008: a checkpoint or early stop chosen on the test split."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.code_index import CodeIndex, call_name
from mlaudit.inputs.python_code import PythonModule
from mlaudit.model import Finding, Location

TEST_NAME = re.compile(r"(^|_)test(_|$)|^test(loader|set|data|dl|ds)", re.I)
VALID_NAME = re.compile(
    r"(^|_)(val|valid|validation|dev|eval|holdout|heldout)(_|$)|^(val|valid|dev)(loader|set|data|dl|ds)", re.I
)
BEST_NAME = re.compile(r"best", re.I)
# What keeping the best looks like inside the `if`: a save, or a copy of the weights kept aside.
SAVE_CALLS = frozenset({"save", "save_checkpoint", "save_model", "save_pretrained", "save_weights",
                        "state_dict", "deepcopy"})
SELECT_OPS = (ast.Gt, ast.GtE, ast.Lt, ast.LtE)


def _last(node: ast.AST) -> str:
    return call_name(node).rsplit(".", 1)[-1]


def _metric_and_best(test: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """(metric, best) of `metric > best_x` / `best_x < metric`, None for any other test."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], SELECT_OPS)):
        return None
    left, right = test.left, test.comparators[0]
    named = [n for n in (left, right) if isinstance(n, (ast.Name, ast.Attribute))]
    best = [n for n in named if BEST_NAME.search(_last(n))]
    if len(best) != 1:
        return None
    metric = right if best[0] is left else left
    return (metric, best[0]) if isinstance(metric, (ast.Name, ast.Attribute)) else None


PATIENCE_NAME = re.compile(r"patience|counter|bad_epochs|no_improve|wait", re.I)


def _keeps_best(node: ast.If) -> bool:
    """Whether the `if` body saves a checkpoint, keeps the weights aside, or resets an early
    stopping counter (`patience = 0`)."""
    for stmt in node.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Call) and _last(n) in SAVE_CALLS:
                return True
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and n.value.value == 0 \
                    and any(PATIENCE_NAME.search(_last(t)) for t in n.targets):
                return True
    return False


def _loop_sources(func: ast.AST) -> list[str]:
    """Names of what the function's loops iterate (`enumerate(testloader)` -> testloader)."""
    out = []
    for n in ast.walk(func):
        if isinstance(n, (ast.For, ast.AsyncFor)):
            it = n.iter
            while isinstance(it, ast.Call) and it.args and _last(it) in ("enumerate", "tqdm", "iter", "zip"):
                it = it.args[0]
            if isinstance(it, (ast.Name, ast.Attribute)):
                out.append(_last(it))
    return out


def _test_source(index: CodeIndex, node: ast.If, metric: ast.expr) -> str | None:
    """The split-named-test data the compared metric comes from, None when it cannot be shown
    (or a validation split is in play)."""
    name = _last(metric)
    if VALID_NAME.search(name):
        return None
    if TEST_NAME.search(name):
        return name
    func = index.function_at(node.lineno)
    sources = _loop_sources(func) if func is not None else []
    # the metric assigned from a call that is given the data: `acc = evaluate(model, test_loader)`
    for a in index.assigns:
        if a.lineno < node.lineno and (func is None or func.lineno <= a.lineno <= (func.end_lineno or 0)) \
                and any(_last(t) == name for t in a.targets) and isinstance(a.value, ast.Call):
            sources += [_last(arg) for arg in a.value.args if isinstance(arg, (ast.Name, ast.Attribute))]
    if any(VALID_NAME.search(s) for s in sources):
        return None
    return next((s for s in sources if TEST_NAME.search(s)), None)


@rule("MLQ008", needs="python")
def selection_on_test_split(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return
    index = module.index
    for node in index.ifs:
        pair = _metric_and_best(node.test)
        if pair is None or not _keeps_best(node):
            continue
        metric, best = pair
        source = _test_source(index, node, metric)
        if source is None:
            continue
        yield ctx.finding(
            f"the model kept is chosen on the test split: `if {ast.unparse(node.test)}:` keeps a "
            f"checkpoint when {ast.unparse(metric)}, measured on `{source}`, beats "
            f"{ast.unparse(best)}; the reported test score is then selected on the test set",
            Location(module.rel, node.lineno),
            evidence={"metric": ast.unparse(metric), "data": source},
            key=f"{ast.unparse(node.test)[:80]}",
        )
