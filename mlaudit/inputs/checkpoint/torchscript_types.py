"""TorchScript object states checked against the attribute types their code declares.

torch.jit.load compiles each class from its code member (`class Linear(Module):` followed by
`name : Type` lines) and then sets every attribute of every pickled object from its state
dict, type-checked: a bool where an int is declared, a missing non-Optional attribute, an
object of another class, or an attribute the class does not declare make it fail. The scan
never compiles code, but it can read those declarations and hold each state against them;
what it cannot judge (a type it does not know) is accepted, so this narrows, and does not
close, what only torch can decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlaudit.inputs.checkpoint import pickle_scan as ps

CLASS = re.compile(r"^class (\w+)\(")
ATTRIBUTE = re.compile(r"^  (\w+) : (.+)$")
ANNOTATION = re.compile(r'^  __annotations__\["([^"]+)"\] = (.+)$')
TENSOR_REBUILDS = frozenset({"_rebuild_tensor_v2", "_rebuild_qtensor", "_rebuild_tensor"})


def declared_classes(sources: dict[str, bytes]) -> dict[str, dict[str, str]]:
    """{qualified class name: {attribute: declared type}} from the code members
    (`<top>/code/__torch__/a/b.py` defines `__torch__.a.b.<Class>`)."""
    classes: dict[str, dict[str, str]] = {}
    for member, data in sources.items():
        at = member.find("code/__torch__/")
        if at < 0:
            continue
        module = member[at + len("code/") : -len(".py")].replace("/", ".")
        current: dict[str, str] | None = None
        for line in data.decode("utf-8", "replace").splitlines():
            found = CLASS.match(line)
            if found:
                current = classes.setdefault(f"{module}.{found.group(1)}", {})
                continue
            if current is None or not line.startswith("  ") or line.startswith("  def "):
                if line.startswith("  def ") or (line and not line.startswith(" ")):
                    current = None
                continue
            attr = ATTRIBUTE.match(line) or ANNOTATION.match(line)
            if attr and not attr.group(2).startswith("Final["):  # constants live in the code
                current[attr.group(1)] = attr.group(2).strip()
    return classes


def _objects(root: Any) -> Iterator[ps.Call]:
    """Every TorchScript object (a `__torch__.*` class instance) reachable from `root`."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, ps.Call):
            func = value.func
            if isinstance(func, ps.Global) and func.module.startswith("__torch__"):
                yield value
            stack += [value.args, value.state, *value.appends, *(v for kv in value.items for v in kv)]
        elif isinstance(value, ps.SDict):
            stack += [v for kv in value.items for v in kv]
        elif isinstance(value, ps.SList | ps.SSet):
            stack += value.items
        elif isinstance(value, tuple):
            stack += list(value)


def _fits(value: Any, declared: str) -> bool:
    """Whether `value` (a symbolic pickle value) can stand for the declared TorchScript type."""
    t = declared.strip()
    if t.startswith("Optional[") and t.endswith("]"):
        return value is None or _fits(value, t[len("Optional[") : -1])
    if t == "NoneType":
        return value is None
    if t == "bool":
        return isinstance(value, bool)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, float)
    if t == "str":
        return isinstance(value, str)
    if t == "Tensor":
        return (
            isinstance(value, ps.Call)
            and isinstance(value.func, ps.Global)
            and value.func.name in TENSOR_REBUILDS
        )
    if t.startswith("__torch__."):
        return isinstance(value, ps.Call) and isinstance(value.func, ps.Global) and value.func.dotted == t
    if t.startswith("Tuple["):
        return isinstance(value, tuple) or _tagged(value)
    if t.startswith("List["):
        return isinstance(value, ps.SList) or _tagged(value)
    if t.startswith("Dict["):
        return isinstance(value, ps.SDict) or _tagged(value)
    return True  # a type this check does not model: torch decides


def _tagged(value: Any) -> bool:
    """A container rebuilt through torch.jit._pickle (typed lists, restore_type_tag)."""
    return (
        isinstance(value, ps.Call)
        and isinstance(value.func, ps.Global)
        and value.func.module == "torch.jit._pickle"
    )


def _kind(value: Any) -> str:
    if isinstance(value, ps.Call) and isinstance(value.func, ps.Global):
        return value.func.dotted
    return "None" if value is None else type(value).__name__.removeprefix("S").lower()


def state_problems(root: Any, classes: dict[str, dict[str, str]]) -> list[str]:
    """Objects whose pickled state torch.jit.load would refuse for their declared class."""
    problems: list[str] = []
    for obj in _objects(root):
        declared = classes.get(obj.func.dotted)
        if declared is None or not isinstance(obj.state, ps.SDict):
            continue
        state = {k: v for k, v in obj.state.items if isinstance(k, str)}
        name = obj.func.dotted.rsplit(".", 1)[-1]
        extra = sorted(set(state) - set(declared))
        missing = sorted(a for a, t in declared.items() if a not in state and not t.startswith("Optional["))
        wrong = [a for a, v in state.items() if a in declared and not _fits(v, declared[a])]
        if extra:
            problems.append(f"a {name} object sets {extra[0]!r}, which its class does not declare")
        elif missing:
            problems.append(f"a {name} object lacks {missing[0]!r}, which its class declares")
        elif wrong:
            a = wrong[0]
            problems.append(f"a {name} object holds {_kind(state[a])} in {a!r}, declared {declared[a]}")
        if len(problems) >= 3:
            break
    return problems
