"""MLS101-MLS149: code-level security (AST only): unsafe deserialization, remote code, unpinned hub pulls."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from mlaudit.context import RuleContext
from mlaudit.inputs.python_code import PythonModule, call_name, iter_calls, keyword
from mlaudit.model import Finding, Location
from mlaudit.registry import rule


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


def _is_local(arg: ast.AST | None, func: str) -> bool:
    value = _const(arg)
    if not isinstance(value, str):
        return False
    if func == "load_dataset" and value in BUILTIN_LOADERS:
        return True
    return value.startswith(("./", "../", "/", "~", ".")) or value.endswith((".json", ".bin", ".pt"))


@rule("MLS103", needs="python")
def unpinned_hub_download(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for call in iter_calls(module.tree):
        name = call_name(call)
        func = name.rsplit(".", 1)[-1]
        if func not in HUB_CALLS:
            continue
        first = call.args[0] if call.args else keyword(call, "repo_id") or keyword(call, "path") \
            or keyword(call, "pretrained_model_name_or_path")
        if _is_local(first, func):
            continue
        offline = keyword(call, "local_files_only")
        if isinstance(offline, ast.Constant) and offline.value is True:
            continue  # never contacts the hub: reads the local cache or a local directory
        revision = keyword(call, "revision")
        if revision is not None and not (isinstance(revision, ast.Constant) and revision.value in FLOATING):
            continue
        what = ast.unparse(first) if first is not None else "?"
        yield ctx.finding(
            f"`{name}({what})` pulls from the hub without a pinned revision"
            + (f" (revision={ast.unparse(revision)} moves)" if revision is not None else ""),
            Location(module.rel, call.lineno),
            evidence={"call": name, "target": what},
            key=f"{name}@{what}",
            fix_hint=f"{name}({what}, revision=\"<commit sha>\")",
        )
