"""MLX: tests and CI. Pure checks over the project snapshot (rules/tests-ci.yaml).

Test files are parsed with `ast`, never imported or run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs import InputError
from mlaudit.inputs.code_index import call_name
from mlaudit.inputs.repo import ProjectSnapshot, RepoFile
from mlaudit.model import Finding, Location

# Calls that load a model artifact, matched on the dotted name as written in the test
# (`torch.load`, `AutoModel.from_pretrained`) by its last one or two parts.
CHECKPOINT_LOADERS_LAST = frozenset({
    "from_pretrained", "load_from_checkpoint", "load_file", "load_checkpoint", "load_state_dict",
    "InferenceSession", "load_model", "safe_open",
})  # fmt: skip
CHECKPOINT_LOADERS_DOTTED = frozenset({"torch.load", "jit.load", "onnx.load", "export.load", "joblib.load"})
# Top-level files that are tooling, not project code.
TOOLING_MODULES = frozenset({"setup", "noxfile", "tasks", "conftest", "fabfile", "manage", "docs"})


@dataclass
class _Imports:
    modules: set[str] = field(default_factory=set)
    loads_checkpoint: bool = False


def _package_of(rel: str) -> str:
    """Dotted package of a file for resolving relative imports ('pkg/sub/x.py' -> 'pkg.sub')."""
    parts = list(PurePosixPath(rel).parts[:-1])
    if parts and parts[0] == "src":
        parts = parts[1:]
    return ".".join(parts)


def scan_imports(source: str, rel: str) -> _Imports | None:
    """Modules a Python file imports (absolute names, relative ones resolved) and whether it
    calls a checkpoint loader. None when the file does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    out = _Imports()
    package = _package_of(rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.modules.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join(p for p in (*anchor, base) if p)
            if base:
                out.modules.add(base)
                out.modules.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Call):
            name = call_name(node.func)
            last2 = ".".join(name.split(".")[-2:])
            if name.split(".")[-1] in CHECKPOINT_LOADERS_LAST or last2 in CHECKPOINT_LOADERS_DOTTED:
                out.loads_checkpoint = True
            if last2 in ("importlib.import_module", "import_module") or name == "__import__":
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.modules.add(arg.value)
    return out


def module_names(rel: str, has_init: set[str]) -> set[str]:
    """Names a project file can be imported as: its dotted path from the root (or from
    src/), and its bare name when its folder is no package (scripts put on sys.path)."""
    p = PurePosixPath(rel)
    parts = list(p.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    names = set()
    if parts:
        names.add(".".join(parts))
        if parts[0] == "src" and len(parts) > 1:
            names.add(".".join(parts[1:]))
    if str(p.parent) not in has_init and p.stem != "__init__":
        names.add(p.stem)
    return names


def ml_modules(project: ProjectSnapshot, frameworks: Iterable[str]) -> set[str]:
    """Import names of the project's own model/training modules: its non-test Python files
    that import an ML framework."""
    wanted = set(frameworks)
    has_init = {str(PurePosixPath(f.rel).parent) for f in project.files if f.name == "__init__.py"}
    names: set[str] = set()
    for f in project.of_kind("python"):
        if PurePosixPath(f.rel).stem in TOOLING_MODULES or f.size > 2_000_000:
            continue
        try:
            text = project.text(f)
        except InputError:
            continue
        if not any(name in text for name in wanted):
            continue  # cheap pre-filter: no framework name anywhere, no need to parse
        info = scan_imports(text, f.rel)
        if info and any(m.split(".")[0] in wanted for m in info.modules):
            names |= module_names(f.rel, has_init)
    return names


def _imports_ml_module(imported: set[str], ml: set[str]) -> bool:
    # `import pkg` counts when pkg holds a model module; `from pkg.model import Net` counts too.
    return any(m == n or n.startswith(m + ".") or m.startswith(n + ".") for m in imported for n in ml)


def _code_files(project: ProjectSnapshot) -> list[RepoFile]:
    return [
        f for f in project.of_kind("python", "notebook") if PurePosixPath(f.rel).stem not in TOOLING_MODULES
    ]


TEST_CONTENT = re.compile(r"^\s*(async\s+)?def test|^\s*class Test|unittest|pytest|^\s*assert\b", re.M)


def real_tests(project: ProjectSnapshot) -> list[RepoFile]:
    """Test-named files that hold tests (a test function or class, unittest/pytest, asserts);
    `test_on_image.py` that only runs inference is a script, not a test."""
    out = []
    for f in project.of_kind("test"):
        try:
            if TEST_CONTENT.search(project.text(f)):
                out.append(f)
        except InputError:
            out.append(f)  # unreadable: do not claim there are no tests
    return out


@rule("MLX001", needs="project")
def missing_tests(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A project with Python code has no test files at all."""
    code = _code_files(project)
    tests = real_tests(project)
    if code and not tests:
        yield ctx.finding(
            f"project has {len(code)} Python/notebook file(s) and 0 test files "
            "(no test_*.py, *_test.py or tests/ folder)",
            Location("."),
            evidence={"code_files": len(code), "test_files": 0},
        )


@rule("MLX002", needs="project")
def tests_miss_model(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Tests exist but none imports a model/training module or loads a checkpoint."""
    tests = [f for f in project.of_kind("test") if f.size <= 2_000_000]
    if not tests:
        return  # MLX001's finding
    ml = ml_modules(project, ctx.params.ml_frameworks)
    checkpoints = project.of_kind("checkpoint")
    if not ml and not checkpoints:
        return  # nothing model-shaped to test
    parsed = 0
    for f in tests:
        try:
            info = scan_imports(project.text(f), f.rel)
        except InputError:
            continue
        if info is None:
            continue
        parsed += 1
        if info.loads_checkpoint or _imports_ml_module(info.modules, ml):
            return
    if parsed == 0:
        return  # no test could be read: cannot judge
    shown = ", ".join(sorted(ml)[:4]) or "none"
    yield ctx.finding(
        f"{parsed} test file(s) import none of the project's {len(ml)} model/training module name(s) "
        f"({shown}) and load none of its {len(checkpoints)} checkpoint(s)",
        Location("."),
        evidence={"test_files": parsed, "ml_modules": len(ml), "checkpoints": len(checkpoints)},
    )


@rule("MLX003", needs="project")
def missing_ci(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A project with Python code has no CI configuration."""
    code = _code_files(project)
    if code and not project.of_kind("ci"):
        yield ctx.finding(
            f"project has {len(code)} Python/notebook file(s) and 0 CI configuration files "
            "(.github/workflows/*.yml, .gitlab-ci.yml, ...)",
            Location("."),
            evidence={"code_files": len(code), "ci_files": 0},
        )


# Workflows that build or publish documentation, or only publish releases: not where tests run.
DOCS_WORKFLOW = re.compile(
    r"(^|[_.-])docs?([_.-]|$)|documentation|publish|release|pages|stale|label|greet|welcome", re.I
)


def _strip_comments(text: str) -> str:
    # YAML/shell comments; '#' inside URLs or strings is rare enough in CI files.
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


@rule("MLX004", needs="project")
def ci_runs_no_tests(project: ProjectSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """CI configuration exists but no CI file runs the tests or mlaudit."""
    ci = [f for f in project.of_kind("ci") if not DOCS_WORKFLOW.search(f.name)]
    if not ci or not real_tests(project):
        return  # MLX003's finding, or MLX001's (nothing to run: one finding per fact)
    patterns = [re.compile(p) for p in ctx.params.test_commands]
    readable = []
    for f in ci:
        try:
            text = _strip_comments(project.text(f))
        except InputError:
            continue
        if any(p.search(text) for p in patterns):
            return
        readable.append(f)
    for f in readable:
        yield ctx.finding(
            f"CI file runs neither the tests nor mlaudit (none of the {len(patterns)} test-command "
            f"patterns matches in any of the {len(ci)} CI file(s))",
            Location(f.rel),
            evidence={"ci_files": len(ci), "patterns": len(patterns)},
        )
