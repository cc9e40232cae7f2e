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
from mlaudit.inputs.code_index import CallSite, CodeIndex, call_name
from mlaudit.inputs.config_keys_in_code import names_in_code
from mlaudit.inputs.import_sites import ImportSite, import_sites
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
    text, utf8 = _decode(raw, rel)
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as err:
        raise InputError(rel, f"line {err.lineno or 1}: invalid Python syntax: {err.msg}") from None
    except (RecursionError, MemoryError, ValueError) as err:
        raise InputError(rel, f"cannot parse: {type(err).__name__}") from None
    return PythonModule(path, rel, tree, text, kind, utf8=utf8)


def decode_python_bytes(raw: bytes, rel: str) -> str:
    """Source text decoded as Python does (PEP 263: a `coding:` declaration in the first two
    lines, else UTF-8); InputError naming the problem when the bytes do not decode."""
    return _decode(raw, rel)[0]


def _decode(raw: bytes, rel: str) -> tuple[str, bool]:
    """(text, whether it was decoded as UTF-8) as decode_python_bytes decodes it."""
    from mlaudit.inputs.yaml_lines import decode_config_bytes

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as err:
        raise InputError(rel, f"line 1: {err.msg if hasattr(err, 'msg') else err}") from None
    if encoding in ("utf-8", "utf-8-sig"):
        return decode_config_bytes(raw, rel), True
    if b"\x00" in raw[:8192]:
        raise InputError(rel, "NUL byte: binary data, not Python source")
    try:
        return raw.decode(encoding), False
    except (UnicodeDecodeError, LookupError) as err:
        raise InputError(rel, f"not valid {encoding} as its coding declaration says ({err})") from None


def iter_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


_SEED_LASTS = SEED_CALLS - {"seed"}  # a bare `.seed(...)` is judged by its owner below


def is_seed_site(site: CallSite) -> bool:
    """A seeding call, judged on its dotted name as written and as resolved through imports."""
    for name in (site.name,) if site.resolved == site.name else (site.name, site.resolved):
        last = name.rpartition(".")[2]
        if last in _SEED_LASTS or name in SEED_CALLS:
            return True
        if name.endswith(".seed") and ("random" in name or name.startswith(("np.", "numpy."))):
            return True
    return False


def seed_lines(module: PythonModule) -> list[int]:
    """Lines of seeding calls in a module."""
    return [c.line for c in module.index.calls if is_seed_site(c)]


def is_training_script(module: PythonModule) -> bool:
    """A module that trains: calls `.backward()` and `.step()`, or `.fit(` / `.train()` of a Trainer."""
    names = {c.last for c in module.index.calls}
    if {"backward", "step"} <= names:
        return not _single_step_demo(module.index)
    return any(c.name.endswith(("trainer.fit", "trainer.train", "Trainer().fit")) for c in module.index.calls)


def _single_step_demo(index: CodeIndex) -> bool:
    """Every `.backward()` runs once at module level, in no loop and no function: a usage demo
    (one optimizer step on random tensors under `__main__`), not a training run. A backward in
    a function may be a step some loop calls, so that still counts as training."""
    backward = [c for c in index.calls if c.last == "backward"]
    in_loop = {id(c.node) for loop in index.loops for c in index.calls_in(loop)}
    return all(index.enclosing_function.get(id(c.node)) is None and id(c.node) not in in_loop
               for c in backward)


def imported_modules(module: PythonModule) -> set[str]:
    """Dotted names a module imports; relative imports (`from .utils import x`, `from . import
    utils`) are resolved against the module's own package."""
    out: set[str] = set(module.index.imported)
    package = module.module_name.split(".")
    if not module.rel.endswith("__init__.py"):
        package = package[:-1]
    for node in module.index.relative_imports:
        if node.level - 1 <= len(package):
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
    return out


# transformers-style trainers seed themselves (TrainingArguments.seed, default 42)
HF_TRAINERS = frozenset({
    "Trainer", "SFTTrainer", "Seq2SeqTrainer", "DPOTrainer", "RewardTrainer", "GRPOTrainer",
})  # fmt: skip


@dataclass(frozen=True)
class SeedSite:
    """A seeding call: dotted name as written, resolved through imports, line."""

    name: str
    resolved: str
    line: int
    arg: str = ""  # the first argument as written (`args.seed`), "" when there is none

    @property
    def last(self) -> str:
        return self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class ModuleFacts:
    """What cross-file rules need to know about one module, small and picklable, so that
    files parsed in worker processes never travel back as syntax trees."""

    rel: str
    kind: str
    module_name: str
    imports: frozenset[str]  # dotted names imported, relative ones resolved
    calls: frozenset[str]  # resolved dotted names of every call
    seeds: tuple[SeedSite, ...]
    trains: bool  # calls backward() and step(), or a trainer's fit/train
    entry: bool  # meant to be run: __main__ guard, argument parsing, notebook, script-level step
    hf_trainer: bool  # builds a transformers-style Trainer
    uses_torch: bool
    anchor_line: int  # where a finding about the script points
    seed_guards: tuple[tuple[int, str], ...] = ()  # `if <...seed>:` around a seeding call
    # names the code defines as fields/options or reads as keys (config_keys_in_code), so that
    # MLT007 never calls a key the project itself uses "unknown"
    config_names: frozenset[str] = frozenset()
    # absolute imports with their lines and whether they are optional (MLR107)
    import_sites: tuple[ImportSite, ...] = ()


def _is_entry_point(module: PythonModule) -> bool:
    index = module.index
    if index.has_main_guard or module.rel.endswith(".ipynb"):
        return True
    return any(c.last in ("parse_args", "backward") for c in index.top_level_calls)


def _seed_guards(module: PythonModule) -> tuple[tuple[int, str], ...]:
    index = module.index
    out = []
    for node in index.ifs:
        test = node.test
        guard = call_name(test).rsplit(".")[-1] if isinstance(test, (ast.Name, ast.Attribute)) else ""
        if "seed" not in guard:
            continue
        end = node.end_lineno or node.lineno
        if any(node.lineno < c.line <= end and is_seed_site(c) for c in index.calls):
            out.append((node.lineno, ast.unparse(test)))
    return tuple(out)


def module_facts(module: PythonModule) -> ModuleFacts:
    """The facts of one parsed module (one pass over its code index)."""
    index = module.index
    calls = index.calls
    anchor = next((c for c in calls if c.name.endswith(("backward", ".fit"))), None)
    return ModuleFacts(
        rel=module.rel, kind=module.kind, module_name=module.module_name,
        imports=frozenset(imported_modules(module)),
        calls=frozenset(c.resolved for c in calls if c.resolved),
        seeds=tuple(SeedSite(c.name, c.resolved, c.line, ast.unparse(c.node.args[0]) if c.node.args else "")
                    for c in calls if is_seed_site(c)),
        trains=is_training_script(module), entry=_is_entry_point(module),
        hf_trainer=any(c.last in HF_TRAINERS for c in calls),
        uses_torch=index.imports_from("torch") or any(c.resolved.startswith("torch.") for c in calls),
        anchor_line=anchor.line if anchor else (calls[0].line if calls else 1),
        seed_guards=_seed_guards(module),
        config_names=names_in_code([module]),
        import_sites=import_sites(module.tree),
    )  # fmt: skip


@dataclass(frozen=True)
class TrainingSetup:
    """Every training config and Python module (as ModuleFacts) of a scan root, for
    cross-file rules."""

    configs: tuple[Any, ...]  # TrainingConfig
    modules: tuple[ModuleFacts, ...]

    def module(self, name: str) -> ModuleFacts | None:
        """The project module importable as `name` (dotted), if any."""
        by_name = self.__dict__.get("_by_name")
        if by_name is None:  # built once: reachable() looks names up for every import
            by_name = {}
            for m in self.modules:
                by_name.setdefault(m.module_name, m)
            object.__setattr__(self, "_by_name", by_name)
        return by_name.get(name)

    def reachable(self, start: ModuleFacts, limit: int = 200) -> list[ModuleFacts]:
        """`start` plus the project modules it imports, transitively."""
        seen = {start.rel: start}
        todo = [start]
        while todo and len(seen) < limit:
            current = todo.pop()
            for name in current.imports:
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


@input_kind("python_facts", scope="file", file_kinds=("python", "test", "notebook"))
def load_python_facts(session, file) -> ModuleFacts | None:
    """A module's facts for cross-file rules (the engine may fill these in from worker
    processes, so the module is not parsed twice)."""
    module = session.get("python", file)
    return None if module is None else module_facts(module)


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
                facts = session.get("python_facts", f)
                if facts is not None:
                    modules.append(facts)
        except InputError:
            continue
    return TrainingSetup(tuple(configs), tuple(modules))
