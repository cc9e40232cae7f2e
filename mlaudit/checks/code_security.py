"""MLS101-MLS149: code-level security (AST only): unsafe deserialization, remote code, unpinned hub pulls."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from mlaudit.checks._hints import with_keyword
from mlaudit.checks.registry import rule
from mlaudit.context import RuleContext
from mlaudit.inputs import InputError
from mlaudit.inputs.code_index import CallSite, CodeIndex, call_name
from mlaudit.inputs.python_code import PythonModule, keyword
from mlaudit.inputs.repo import ProjectSnapshot
from mlaudit.model import Finding, Location


def _const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


def _param_default(index: CodeIndex, site: CallSite, name: str) -> ast.expr | None:
    """The default of parameter `name` of the function enclosing `site`, if it has one."""
    func = index.enclosing_function.get(id(site.node))
    args = getattr(func, "args", None)
    if args is None:
        return None
    positional = [*args.posonlyargs, *args.args]
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults,
                        strict=True))
    kw_defaults = zip(args.kwonlyargs, args.kw_defaults, strict=True)
    defaults.update({a.arg: d for a, d in kw_defaults if d is not None})
    return defaults.get(name)


@rule("MLS101", needs="python")
def torch_load_unsafe(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    index = module.index
    for site in index.calls:
        if site.resolved != "torch.load" and site.name != "torch.load":
            continue
        call = site.node
        flag = keyword(call, "weights_only")
        if flag is not None and _const(flag) is True:
            continue
        if isinstance(flag, ast.Name) and _const(_param_default(index, site, flag.id)) is True:
            continue  # weights_only=weights_only, a parameter whose default is True
        how = "without weights_only=True" if flag is None else f"with weights_only={ast.unparse(flag)}"
        yield ctx.finding(
            f"{site.name} {how}: unpickling a file can run arbitrary code",
            Location(module.rel, call.lineno),
            evidence={"weights_only": None if flag is None else ast.unparse(flag)},
            key=f"torch.load@{ast.unparse(call)[:80]}",
            fix_hint=with_keyword(call, "weights_only", "True"),
        )


@rule("MLS102", needs="python")
def trust_remote_code(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    for site in module.index.calls:
        call = site.node
        flag = keyword(call, "trust_remote_code")
        if flag is None or _const(flag) is not True:
            continue
        yield ctx.finding(
            f"`{site.name or 'call'}(..., trust_remote_code=True)` downloads and runs Python "
            "code from the model repository",
            Location(module.rel, call.lineno),
            evidence={"call": site.name},
            key=f"{site.name}@{ast.unparse(call)[:80]}",
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


# Libraries whose loaders download from the Hugging Face Hub; a callee counts only when the
# module's imports resolve it into one of them (a project's own `from_pretrained` does not).
HUB_LIBRARIES = ("transformers", "datasets", "huggingface_hub", "diffusers", "peft", "sentence_transformers")


def _hub_id(index: CodeIndex, arg: ast.AST | None, func: str) -> str | None:
    """The hub id `arg` shows (a string literal or a module constant holding one), else None:
    a variable may name a local directory, so it is never reported."""
    if isinstance(arg, ast.Name) and arg.id in index.constants:
        arg = index.constants[arg.id]
    value = _const(arg)
    if not isinstance(value, str) or not value or _is_local(arg, func):
        return None
    return value


@rule("MLS103", needs="python")
def unpinned_hub_download(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return  # tests pulling hub fixtures are no supply-chain path into the product
    index = module.index
    for site in index.calls:
        call, name = site.node, site.name
        if not site.resolved.startswith(tuple(f"{lib}." for lib in HUB_LIBRARIES)):
            continue  # not a hub library's API (e.g. the project's own from_pretrained)
        if any(k.arg is None for k in call.keywords):
            continue  # **kwargs may carry revision=
        func = site.last
        shown = None  # how the call is shown when it is not `name(first)`
        target: str | None
        if site.resolved == "transformers.pipeline":
            # pipeline(task, model=...): the model id is the second argument; without one the
            # task's default model is downloaded, unpinned as well.
            task = ast.unparse(call.args[0]) if call.args else "task"
            model_arg = call.args[1] if len(call.args) > 1 else keyword(call, "model")
            if model_arg is None:
                target = "<task default>"
                shown = (f"{name}({task})` (no model: the task's default model)",
                         f'{name}({task}, model="<org/name>", revision="<commit sha>")')
            else:
                target = _hub_id(index, model_arg, func)
                if target is None:
                    continue
                shown = (f"{name}({task}, model={ast.unparse(model_arg)})`",
                         f'{name}({task}, model={ast.unparse(model_arg)}, revision="<commit sha>")')
        elif func in HUB_CALLS:
            first = call.args[0] if call.args else keyword(call, "repo_id") or keyword(call, "path") \
                or keyword(call, "pretrained_model_name_or_path")
            target = _hub_id(index, first, func)
            if target is None:
                continue
        else:
            continue
        offline = keyword(call, "local_files_only")
        if isinstance(offline, ast.Constant) and offline.value is True:
            continue  # never contacts the hub: reads the local cache or a local directory
        revision = keyword(call, "revision")
        if revision is not None and not (isinstance(revision, ast.Constant) and revision.value in FLOATING):
            continue
        what = ast.unparse(call.args[0]) if call.args and shown is None else repr(target)
        label, fix = shown or (f"{name}({what})`", with_keyword(call, "revision", "'<commit sha>'"))
        yield ctx.finding(
            f"`{label} pulls {target!r} from the hub without a pinned revision"
            + (f" (revision={ast.unparse(revision)} moves)" if revision is not None else ""),
            Location(module.rel, call.lineno),
            evidence={"call": name, "target": target},
            key=f"{name}@{target}",
            fix_hint=fix,
        )


def _reads_file(node: ast.AST) -> bool:
    """An expression built from a file's content (`open(p).read()`, `Path(p).read_text()`)."""
    readers = ("read", "read_text", "readlines")
    return any(isinstance(n, ast.Call) and call_name(n).rsplit(".", 1)[-1] in readers for n in ast.walk(node))


@rule("MLS104", needs="python")
def config_executed_as_code(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.rel.rsplit("/", 1)[-1] == "setup.py":
        return  # packaging reads its own version file this way; no user config involved
    index = module.index
    runs = [site for site in index.calls if site.name in ("exec", "eval") and site.node.args]
    if not runs:
        return  # most modules: no need to look for file reads at all
    # names bound to file contents in this module (`cfg_text = open(f).read()`)
    from_file = {t.id for a in index.assigns if _reads_file(a.value)
                 for t in a.targets if isinstance(t, ast.Name)}
    for site in runs:
        arg = site.node.args[0]
        from_content = _reads_file(arg) or (isinstance(arg, ast.Name) and arg.id in from_file)
        source = "file content" if from_content else None
        if source is None and site.name == "exec" and any(
                isinstance(n, ast.Attribute) and n.attr == "argv" for n in ast.walk(arg)):
            source = "command-line argument"
        if source is None:
            continue
        yield ctx.finding(
            f"`{site.name}()` runs {source} as Python: a config or override can execute anything, and "
            "what a run used cannot be read back without running it",
            Location(module.rel, site.line),
            evidence={"call": site.name, "source": source},
            key=f"{site.name}@{ast.unparse(arg)[:60]}",
        )


# Downloads that always land in a file, and the keyword that carries their checksum (None: none exists).
FILE_DOWNLOADS = {
    "urllib.request.urlretrieve": None, "urllib.urlretrieve": None, "wget.download": None,
    "torch.hub.download_url_to_file": "hash_prefix", "torch.hub.load_state_dict_from_url": "check_hash",
    "torch.utils.model_zoo.load_url": "check_hash", "torchvision.datasets.utils.download_url": "md5",
    "torchvision.datasets.utils.download_and_extract_archive": "md5",
}  # fmt: skip
# Generic HTTP reads: a download only when the same function writes bytes to a file.
HTTP_READS = frozenset({"requests.get", "urllib.request.urlopen", "httpx.get", "requests.request"})
CHECKSUM_WORDS = ("sha256", "sha1", "md5", "hashlib", "checksum", "check_integrity", "verify_hash", "blake2")


BODY_ATTRS = frozenset({"text", "content", "read"})  # what carries a response's body


def _written_directly(calls: list[CallSite], read: ast.Call) -> bool:
    """`f.write(requests.get(url).text)`: the downloaded body goes straight into a file, in
    text mode as much as in binary."""
    def carries_body(arg: ast.expr) -> bool:
        return any(isinstance(n, ast.Attribute) and n.value is read and n.attr in BODY_ATTRS
                   for n in ast.walk(arg))

    return any(c.last == "write" and any(carries_body(a) for a in c.node.args) for c in calls)


def _writes_file(calls: list[CallSite]) -> bool:
    for c in calls:
        if c.last in ("write_bytes", "copyfileobj", "iter_content"):
            return True
        if c.name != "open":
            continue
        modes = [*c.node.args[1:2], *(k.value for k in c.node.keywords if k.arg == "mode")]
        if any(isinstance(m, ast.Constant) and isinstance(m.value, str) and ("w" in m.value or "a" in m.value)
               and "b" in m.value for m in modes):
            return True
    return False


@rule("MLS105", needs="python")
def download_without_checksum(module: PythonModule, ctx: RuleContext) -> Iterable[Finding]:
    if module.kind == "test":
        return
    index = module.index
    for site in index.calls:
        if site.resolved not in FILE_DOWNLOADS and site.resolved not in HTTP_READS:
            continue
        func = index.enclosing_function.get(id(site.node))
        scope = index.calls_in(func) if func is not None else index.top_level_calls
        if any(word in f"{c.name} {c.resolved}".lower() for c in scope for word in CHECKSUM_WORDS):
            continue  # the function checks a digest somewhere
        if site.resolved in FILE_DOWNLOADS:
            kw = FILE_DOWNLOADS[site.resolved]
            value = keyword(site.node, kw) if kw else None
            unset = isinstance(value, ast.Constant) and value.value in (None, False)
            if kw and value is not None and not unset:
                continue  # a hash, md5 or check_hash=True (or a variable carrying one)
        elif not (_writes_file(scope) or _written_directly(scope, site.node)):
            continue
        what = ast.unparse(site.node.args[0])[:80] if site.node.args else "?"
        yield ctx.finding(
            f"`{site.name}({what})` downloads data or weights without verifying a checksum: a changed, "
            "truncated or tampered file is used silently",
            Location(module.rel, site.line),
            evidence={"call": site.resolved},
            key=f"{site.resolved}@{what}",
        )


SHELL_DOWNLOAD = re.compile(r"^\s*[^#\n]*\b(wget\s|curl\s[^\n]*(-o\b|-O\b|--output\b|>\s*\S))", re.M)
SHELL_CHECKSUM = re.compile(r"sha\d*sum|md5sum|shasum|b2sum|openssl\s+dgst|--checksum|sha256", re.I)


@rule("MLS106", needs="project")
def script_download_without_checksum(project: ProjectSnapshot, ctx: RuleContext) -> Iterable[Finding]:
    """Shell scripts that fetch files with wget/curl and never verify a checksum."""
    for f in project.files:
        if not f.rel.endswith(".sh") or f.size > 1_000_000:
            continue
        try:
            text = project.text(f)
        except InputError:
            continue
        downloads = list(SHELL_DOWNLOAD.finditer(text))
        if not downloads or SHELL_CHECKSUM.search(text):
            continue
        line = text.count("\n", 0, downloads[0].start()) + 1
        yield ctx.finding(
            f"script downloads {len(downloads)} file(s) with {downloads[0].group(1).split()[0]} and verifies "
            "no checksum: a changed or truncated archive is used silently",
            Location(f.rel, line),
            evidence={"downloads": len(downloads)},
        )
