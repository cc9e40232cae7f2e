"""MLS101-MLS149: code-level security (AST only): unsafe deserialization, remote code, unpinned hub pulls."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs.python_code import PythonModule, call_name, imported_modules, iter_calls, keyword
from mlaudit.model import Finding, Location


def _const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


@rule("MLS101", needs="python")
def torch_load_unsafe(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for call in iter_calls(module.tree):
        if call_name(call) != "torch.load":
            continue
        flag = keyword(call, "weights_only")
        if flag is not None and _const(flag) is True:
            continue
        how = "without weights_only=True" if flag is None else f"with weights_only={ast.unparse(flag)}"
        yield ctx.finding(
            f"torch.load {how}: unpickling a file can run arbitrary code",
            Location(module.rel, call.lineno),
            evidence={"weights_only": None if flag is None else ast.unparse(flag)},
            key=f"torch.load@{ast.unparse(call)[:80]}",
            fix_hint="torch.load(path, weights_only=True)",
        )


@rule("MLS102", needs="python")
def trust_remote_code(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for call in iter_calls(module.tree):
        flag = keyword(call, "trust_remote_code")
        if flag is None or _const(flag) is not True:
            continue
        yield ctx.finding(
            f"`{call_name(call) or 'call'}(..., trust_remote_code=True)` downloads and runs Python "
            "code from the model repository",
            Location(module.rel, call.lineno),
            evidence={"call": call_name(call)},
            key=f"{call_name(call)}@{ast.unparse(call)[:80]}",
        )


HUB_CALLS = frozenset({"from_pretrained", "load_dataset", "hf_hub_download", "snapshot_download"})
BUILTIN_LOADERS = frozenset({"csv", "json", "parquet", "text", "imagefolder", "audiofolder", "arrow",
                             "pandas", "webdataset", "sql", "generator"})
FLOATING = frozenset({"main", "master", "HEAD", None})


# Calls that build a filesystem path (a hub id is a plain "org/name" string, never one of these).
PATH_CALLS = frozenset({"Path", "PurePath", "PosixPath", "WindowsPath", "os.path.join", "os.path.abspath",
                        "os.path.expanduser", "os.path.realpath", "os.path.dirname", "os.path.normpath",
                        "os.fspath", "osp.join", "path.join"})
PATH_METHODS = ("resolve", "absolute", "expanduser", "joinpath", "with_name", "with_suffix", "cwd", "home")


def _is_path_expr(arg: ast.AST | None) -> bool:
    """`HERE / "model"`, `Path(...)`, `os.path.join(...)`, `str(<path>)`: built from the file
    system, so a local directory (str / str is a TypeError, so `/` means pathlib)."""
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Div):
        return True
    if isinstance(arg, ast.Call):
        name = call_name(arg)
        last = name.rsplit(".", 1)[-1]
        if name in PATH_CALLS or last in {"Path", "PurePath"} or name.endswith(".path.join"):
            return True
        if "." in name and last in PATH_METHODS:
            return True
        if name in {"str", "os.fspath"} and len(arg.args) == 1:
            return _is_path_expr(arg.args[0])
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        head = arg.values[0].value
        return isinstance(head, str) and head.startswith(("./", "../", "/", "~"))
    return False


def _is_local(arg: ast.AST | None, func: str) -> bool:
    if _is_path_expr(arg):
        return True
    value = _const(arg)
    if not isinstance(value, str):
        return False
    if func == "load_dataset" and value in BUILTIN_LOADERS:
        return True
    return value.startswith(("./", "../", "/", "~", ".")) or value.endswith((".json", ".bin", ".pt"))


@rule("MLS103", needs="python")
def unpinned_hub_download(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    imports_transformers = any(m == "transformers" or m.startswith("transformers.")
                               for m in imported_modules(module))
    for call in iter_calls(module.tree):
        name = call_name(call)
        func = name.rsplit(".", 1)[-1]
        shown = None  # how the call is shown when it is not `name(first)`
        if name in ("pipeline", "transformers.pipeline") and imports_transformers:
            # pipeline(task, model=...): the model id is the second argument; without one the
            # task's default model is downloaded, unpinned as well.
            task = ast.unparse(call.args[0]) if call.args else "task"
            first = call.args[1] if len(call.args) > 1 else keyword(call, "model")
            if first is None:
                shown = (f"{name}({task})` (no model: the task's default model)",
                         f'{name}({task}, model="<org/name>", revision="<commit sha>")')
            elif not isinstance(first, ast.Constant) and not _is_path_expr(first):
                continue  # a model object or variable: often an already loaded model
            else:
                shown = (f"{name}({task}, model={ast.unparse(first)})`",
                         f'{name}({task}, model={ast.unparse(first)}, revision="<commit sha>")')
        elif func not in HUB_CALLS:
            continue
        else:
            first = call.args[0] if call.args else keyword(call, "repo_id") or keyword(call, "path") \
                or keyword(call, "pretrained_model_name_or_path")
        if first is not None and _is_local(first, func):
            continue
        offline = keyword(call, "local_files_only")
        if isinstance(offline, ast.Constant) and offline.value is True:
            continue  # never contacts the hub: reads the local cache or a local directory
        revision = keyword(call, "revision")
        if revision is not None and not (isinstance(revision, ast.Constant) and revision.value in FLOATING):
            continue
        what = ast.unparse(first) if first is not None else "?"
        label, fix = shown or (f"{name}({what})`", f"{name}({what}, revision=\"<commit sha>\")")
        yield ctx.finding(
            f"`{label} pulls from the hub without a pinned revision"
            + (f" (revision={ast.unparse(revision)} moves)" if revision is not None else ""),
            Location(module.rel, call.lineno),
            evidence={"call": name, "target": what},
            key=f"{name}@{what}",
            fix_hint=fix,
        )
