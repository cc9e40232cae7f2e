"""Static pickle scanner: interprets pickle opcodes symbolically and never unpickles anything.

The interpreter tracks the stack and the memo the way `pickle.Unpickler` would, but every
value is symbolic: a `Global` is a (module, name) pair that was named, never imported; a
`Call` is a call that was requested, never made. From the same pass come
- the verdict: every imported global judged against an exact (module, name) allowlist,
  every call and BUILD judged by what it targets, every dynamically built name flagged;
- the tensors: `torch._utils._rebuild_tensor_v2/v3` calls and their persistent storage ids
  give names, dtypes, shapes and storage sizes, so parameter counts need no loading.

The allowlist was decided from files written by torch 2.13 `torch.save` (zip and legacy
formats) with: a module state_dict, Adam optimizer and LR-scheduler state, Lightning-style
dicts, bf16/fp16/int8/uint8/bool/int64/float64/complex64/float8/uint16 tensors, Parameters,
views, quantized qint8 tensors, numpy scalars and arrays in metadata, torch.Size/dtype/device.
See `REAL_FILE_GLOBALS` for the exact list those files use.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Every global the real torch 2.13 files listed above import (printed by
# `python -m fixtures.gen.attacks --print-globals`; tests/test_pickle_scan.py asserts
# that these files use exactly this set). Anything else is not allowlisted.
REAL_FILE_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_qtensor"),
    ("torch.storage", "UntypedStorage"),
    ("torch", "FloatStorage"), ("torch", "DoubleStorage"), ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"), ("torch", "LongStorage"), ("torch", "IntStorage"),
    ("torch", "ShortStorage"), ("torch", "CharStorage"), ("torch", "ByteStorage"),
    ("torch", "BoolStorage"), ("torch", "ComplexFloatStorage"), ("torch", "ComplexDoubleStorage"),
    ("torch", "QInt8Storage"), ("torch", "QUInt8Storage"), ("torch", "QInt32Storage"),
    ("torch", "Size"), ("torch", "device"), ("torch", "per_tensor_affine"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # protocol-2 bytes (numpy scalar payloads): _codecs.encode(str, 'latin1')
})  # fmt: skip

# torch dtypes appear as globals (`torch.float16`); they are plain constants.
TORCH_DTYPES = (
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
    "int", "int16", "short", "int8", "uint8", "uint16", "uint32", "uint64", "bool", "complex64",
    "complex128", "cfloat", "cdouble", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "qint8", "quint8", "qint32", "quint4x2",
)  # fmt: skip

# Added beyond the real files, each for a stated reason:
EXTRA_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    # numpy < 2 writes the same reconstructors under numpy.core
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    # other quantization schemes of the same `_rebuild_qtensor` path
    ("torch", "per_channel_affine"), ("torch", "per_tensor_symmetric"), ("torch", "per_channel_symmetric"),
    # Parameters with extra python state (torch >= 2.1 writes this for subclassed params)
    ("torch._utils", "_rebuild_parameter_with_state"),
    # float8/uint* storages spelled as the new-style storage class
    ("torch", "UntypedStorage"),
    *(("torch", d) for d in TORCH_DTYPES),
    # torch's own weights_only unpickler accepts these by default (torch/_weights_only_unpickler.py,
    # _get_allowed_globals), so files that use them load with weights_only=True and no
    # add_safe_globals: sets, complex numbers and bytearrays in metadata (protocol 2 spells
    # builtins `__builtin__`), sparse/nested/meta tensors and their layout lookup
    # (`_get_layout("torch.sparse_coo")` returns a layout constant), Parameter and Tensor.
    # (collections.Counter stays out: a BUILD on it is one of the attack corpus' gadgets.)
    *((mod, n) for mod in ("builtins", "__builtin__") for n in ("set", "complex", "bytearray")),
    ("torch", "Tensor"), ("torch.nn.parameter", "Parameter"),
    ("torch.serialization", "_get_layout"), ("torch", "per_channel_affine_float_qparams"),
    ("torch._utils", "_rebuild_sparse_tensor"), ("torch._utils", "_rebuild_nested_tensor"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"), ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
})  # fmt: skip

ALLOWED: frozenset[tuple[str, str]] = REAL_FILE_GLOBALS | EXTRA_ALLOWED

# Benign metadata objects: loading them runs no code of concern, but they are not tensors and
# `torch.load(weights_only=True)` rejects them unless explicitly allowed. Reported at a lower
# severity with what they are.
METADATA_GLOBALS: dict[tuple[str, str], str] = {
    ("argparse", "Namespace"): "an argparse.Namespace (command-line arguments)",
    **{(mod, cls): f"a pathlib path ({cls})"
       for mod in ("pathlib", "pathlib._local")
       for cls in ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")},
}  # fmt: skip

# Modules (and their submodules) whose globals execute code, spawn processes, touch files or
# resolve further names. Importing any name from them is "code execution on load".
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pty", "commands", "runpy",
    "importlib", "imp", "code", "codeop", "pickle", "_pickle", "cPickle", "marshal", "ctypes",
    "webbrowser", "multiprocessing", "asyncio", "types", "platform", "pdb", "bdb", "timeit",
    "profile", "cProfile", "trace", "tempfile", "glob", "ssl", "http", "urllib", "requests",
    "ftplib", "smtplib", "telnetlib", "xmlrpc", "zipimport", "pkgutil", "site", "sysconfig",
    "dill", "cloudpickle", "joblib.externals", "torch.hub", "torch.jit", "torch._dynamo",
    "torch.ops", "torch.serialization", "numpy.testing", "numpy.f2py", "numpy.distutils", "pip",
    "setuptools", "distutils", "venv", "ensurepip", "pydoc", "idlelib", "operator", "functools",
    "_operator", "_functools", "copyreg", "_io", "io", "pathlib", "_posixsubprocess", "signal",
})  # fmt: skip
DANGEROUS_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "__import__", "globals",
    "locals", "vars", "input", "breakpoint", "help", "exit", "quit", "memoryview", "type",
    "object", "super", "classmethod", "staticmethod", "property", "dir", "callable", "apply",
    "execfile", "reload", "file",
})  # fmt: skip

# Opcodes whose value the interpreter reads from the opcode argument itself.
_CONST_OPS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT",
})  # fmt: skip

MAX_OPCODES = 20_000_000
MAX_MEMO = 5_000_000
MAX_ISSUES = 10_000


class PickleScanError(Exception):
    """The pickle could not be interpreted to the end: the verdict is inconclusive.

    `partial` holds what was learned before the failure (globals, issues): a payload met
    before the point where parsing fails is still reported."""

    partial: PickleResult | None = None


@dataclass(frozen=True, eq=False)
class Global:
    """A global that the pickle names (GLOBAL, STACK_GLOBAL, INST): never imported."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """A call (REDUCE, NEWOBJ, OBJ, INST) the unpickler would make: never made here."""

    func: Any
    args: Any
    state: Any = None
    items: list = field(default_factory=list)  # SETITEM(S) onto the result (OrderedDict)
    appends: list = field(default_factory=list)


@dataclass(eq=False)
class PersId:
    """A persistent id (BINPERSID/PERSID): in torch files, a reference to a storage record."""

    pid: Any


@dataclass(eq=False)
class SDict:
    """A dict built by the pickle; items kept as pairs so symbolic keys need no hashing."""

    items: list = field(default_factory=list)


@dataclass(eq=False)
class SList:
    items: list = field(default_factory=list)


@dataclass(eq=False)
class SSet:
    items: list = field(default_factory=list)
    frozen: bool = False


class _Mark:
    pass


MARK = _Mark()


@dataclass(frozen=True)
class Issue:
    """One reason a pickle is not plain data.

    kind: `dangerous` (code execution on load), `dynamic` (a name or callable built at load
    time, which no static scan can resolve), `global` (non-allowlisted global), `call`
    (call of a non-allowlisted callable), `build` (BUILD on a non-allowlisted type),
    `metadata` (benign metadata object, lower severity).
    """

    kind: str
    target: str  # the exact global (module.name) or a description of the computed value
    detail: str
    member: str = ""  # where inside the file (zip member / stacked pickle index)

    @property
    def is_error(self) -> bool:
        return self.kind != "metadata"


@dataclass
class PickleResult:
    """Everything one static pass learned about one pickle."""

    root: Any
    protocol: int
    end: int
    globals: list[tuple[str, str]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    opcodes: int = 0
    # every persistent id the pickle pushes (in torch files: the storage records it uses)
    persistent_ids: list[PersId] = field(default_factory=list)
    # every torch._utils._rebuild_* call: the tensors (and their parts) torch would build
    rebuilds: list[Call] = field(default_factory=list)
    # names of the opcodes used (torch's weights_only unpickler supports only some)
    opcode_names: set[str] = field(default_factory=set)
    # constructs no loader can execute (a constant called, a global TorchScript cannot
    # resolve): the file is not unsafe, but its verdict cannot be clean
    oddities: list[str] = field(default_factory=list)
    member: str = ""  # where the pickle sits (zip member, stacked pickle), for messages
    non_utf8: bool = False  # a Python 2 byte string that is not UTF-8 (torch decodes them as UTF-8)


# Inside TorchScript archives, data.pkl/constants.pkl are read by TorchScript's own C++
# unpickler, which resolves `__torch__.*` names as compiled TorchScript classes and a fixed
# set of `torch.jit._pickle` list builders; no Python global is imported for them.
TORCHSCRIPT_BUILDERS = frozenset({
    "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "build_tensor_from_id",
    "restore_type_tag",
})  # fmt: skip


# Python-level globals seen in TorchScript archives written by torch 2.x (the generated case and
# silero-vad's model); torch.jit.load's C++ unpickler resolves no arbitrary Python name.
TORCHSCRIPT_GLOBALS = frozenset({
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_qtensor"),
    *(("torch", f"{t}Storage") for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short",
                                          "Char", "Byte", "Bool", "QInt8", "QUInt8", "QInt32")),
})  # fmt: skip
# The opcodes torch.load(weights_only=True) executes (torch/_weights_only_unpickler.py, 2.13);
# a torch checkpoint using another one is refused by torch, so it is never "clean".
WEIGHTS_ONLY_OPCODES = frozenset({
    "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS", "MARK",
    "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE",
    "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1", "BININT2", "BINFLOAT",
    "BINUNICODE", "SHORT_BINSTRING", "BINPERSID", "BINGET", "LONG_BINGET", "BINPUT",
    "LONG_BINPUT", "LONG1", "PROTO", "STOP",
})  # fmt: skip


def _torchscript_internal(module: str, name: str) -> bool:
    return (
        module == "__torch__"
        or module.startswith("__torch__.")
        or (module == "torch.jit._pickle" and name in TORCHSCRIPT_BUILDERS)
    )


def classify_global(module: str, name: str, torchscript: bool = False) -> tuple[str, str] | None:
    """(kind, detail) for a global that is not allowlisted, None if it is allowed.

    `torchscript=True` additionally accepts the TorchScript-internal names (see above)."""
    if (module, name) in ALLOWED or (module, name) in JOBLIB_WRAPPERS:
        return None
    if torchscript and _torchscript_internal(module, name):
        return None
    if (module, name) in METADATA_GLOBALS:
        return "metadata", METADATA_GLOBALS[(module, name)]
    root = module.split(".")[0]
    if "." in name:
        return "dynamic", f"dotted attribute path {name!r} resolves further names at load time"
    if module in ("builtins", "__builtin__") and name in DANGEROUS_BUILTINS:
        return "dangerous", "runs or resolves arbitrary code"
    if (
        root in DANGEROUS_MODULES
        or module in DANGEROUS_MODULES
        or any(module.startswith(m + ".") for m in DANGEROUS_MODULES)
    ):
        return "dangerous", "can execute code, spawn processes or touch files"
    return "global", "not on the allowlist of globals that checkpoints need"


JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)


class _Interp:
    def __init__(self, member: str, stream: Any = None, torchscript: bool = False) -> None:
        self.member = member
        self.torchscript = torchscript
        self.stream = stream
        self.joblib_arrays = 0
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.result = PickleResult(root=None, protocol=0, end=0, member=member)
        self._seen_globals: set[tuple[str, str]] = set()
        self._issue_set: set[Issue] = set()

    # -- helpers -------------------------------------------------------------
    def issue(self, kind: str, target: str, detail: str) -> None:
        item = Issue(kind, target, detail, self.member)
        if item not in self._issue_set:  # a set: hostile files may repeat one issue millions of times
            self._issue_set.add(item)
            if len(self._issue_set) > MAX_ISSUES:
                raise PickleScanError(f"more than {MAX_ISSUES:,} distinct unsafe constructs")
            self.result.issues.append(item)

    def pop(self) -> Any:
        if not self.stack:
            raise PickleScanError("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        items = self.stack
        if not self.metastack:
            raise PickleScanError("mark stack underflow")
        self.stack = self.metastack.pop()
        return items

    def make_global(self, module: Any, name: Any) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            self.issue(
                "dynamic",
                f"{_describe(module)}.{_describe(name)}",
                "STACK_GLOBAL with a module or name computed at load time",
            )
            return Global(str(module), str(name))
        g = Global(module, name)
        key = (module, name)
        if key not in self._seen_globals:
            self._seen_globals.add(key)
            self.result.globals.append(key)
            foreign = not _torchscript_internal(module, name) and key not in TORCHSCRIPT_GLOBALS
            if self.torchscript and foreign:
                self.result.oddities.append(f"{g.dotted} is not a global TorchScript archives resolve")
            verdict = classify_global(module, name, self.torchscript)
            if verdict:
                self.issue(verdict[0], g.dotted, verdict[1])
        return g

    def call(self, func: Any, args: Any, how: str) -> Call:
        if isinstance(func, Global):
            if (func.module, func.name) == ("_codecs", "encode"):
                ok = (
                    isinstance(args, tuple)
                    and len(args) == 2
                    and isinstance(args[0], str)
                    and args[1] in ("latin1", "latin-1")
                )
                if not ok:
                    self.issue("call", func.dotted, "_codecs.encode called with other than (str, 'latin1')")
                elif isinstance(args[0], str):
                    return args[0].encode("latin1")  # type: ignore[return-value]
            if func.module == "torch" and (
                func.name in TORCH_DTYPES or func.name in _QSCHEMES or func.name.endswith("Storage")
            ):
                self.result.oddities.append(f"{how} calls {func.dotted}, not a callable: loading fails")
            if how.startswith("NEWOBJ") and (
                func.module in ("torch._utils", "_codecs", "torch.serialization") or func.name.startswith("_")
            ):
                self.result.oddities.append(f"{how} on {func.dotted}, a function, not a class: loading fails")
            key = (func.module, func.name)
            if key == ("collections", "OrderedDict") and not _pairs_ok(args):
                self.result.oddities.append(f"{how} builds an OrderedDict from items that are not pairs")
            if key == ("torch.nn.parameter", "Parameter") and not (
                isinstance(args, tuple) and args and tensor_of(args[0]) is not None
                and all(isinstance(a, bool) for a in args[1:])
            ):
                self.result.oddities.append(f"{how} builds a Parameter from something that is not a tensor")
            most = _MAX_ARGS.get((func.module, func.name))
            least = _MIN_ARGS.get((func.module, func.name), 0)
            if most is not None and (not isinstance(args, tuple) or not least <= len(args) <= most):
                self.result.oddities.append(f"{how} calls {func.dotted} with arguments it does not take")
            if func.module == "torch._utils" and func.name.startswith("_rebuild"):
                rebuilt = Call(func, args)
                self.result.rebuilds.append(rebuilt)  # each must end up in the tensor listing
                return rebuilt
        else:
            # The callable was itself computed (e.g. getattr(...) result): never plain data.
            self.issue("dynamic", _describe(func), f"{how} of a value computed at load time")
        return Call(func, args)

    def build(self, obj: Any, state: Any) -> None:
        if isinstance(obj, Call) and isinstance(obj.func, Global):
            key = (obj.func.module, obj.func.name)
            if key in JOBLIB_WRAPPERS:
                obj.state = state
                self.skip_joblib_array(obj, state)
                return
            if (
                key in ALLOWED
                or key in METADATA_GLOBALS
                or (self.torchscript and _torchscript_internal(*key))
            ):
                obj.state = state
                return
            self.issue("build", obj.func.dotted, "BUILD (__setstate__) on its instance")
            return
        self.issue("build", _describe(obj), "BUILD (__setstate__) on a value that is not an allowlisted type")

    def skip_joblib_array(self, wrapper: Call, state: Any) -> None:
        """joblib writes an array's raw bytes (or, for object arrays, a nested pickle) into
        the stream right after the wrapper's BUILD; step over them as joblib would read them."""
        items = dict((k, v) for k, v in state.items if isinstance(k, str)) if isinstance(state, SDict) else {}
        shape, dtype = items.get("shape"), items.get("dtype")
        itemsize, is_object = _numpy_itemsize(dtype)
        if self.stream is None or not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape):
            raise PickleScanError("joblib array wrapper without a readable shape")
        self.joblib_arrays += 1
        if is_object:
            inner = _Interp(f"{self.member}[joblib object array]", self.stream, self.torchscript).run(
                self.stream
            )
            self.result.issues.extend(i for i in inner.issues if i not in self.result.issues)
            for g in inner.globals:
                if g not in self._seen_globals:
                    self._seen_globals.add(g)
                    self.result.globals.append(g)
            wrapper.appends.append(inner.root)
            return
        if itemsize is None:
            raise PickleScanError(f"joblib array with an unreadable dtype {_describe(dtype)}")
        if "numpy_array_alignment_bytes" in items:
            pad = self.stream.read(1)
            if len(pad) != 1:
                raise PickleScanError("truncated joblib array padding")
            self.stream.seek(pad[0], 1)
        count = 1
        for s in shape:
            count *= s
        start = self.stream.tell()
        self.stream.seek(0, 2)
        end = self.stream.tell()
        if start + count * itemsize > end:
            raise PickleScanError(f"joblib array of {count * itemsize:,} bytes runs past the end of the file")
        self.stream.seek(start + count * itemsize)

    # -- main loop -----------------------------------------------------------
    def run(self, stream: io.BufferedIOBase | Any) -> PickleResult:
        ops = self.result
        try:
            names = ops.opcode_names
            for op, arg, _pos in pickletools.genops(stream):
                names.add(op.name)
                ops.opcodes += 1
                if ops.opcodes > MAX_OPCODES:
                    raise PickleScanError(f"more than {MAX_OPCODES:,} opcodes")
                if op.name == "STOP":
                    ops.root = self.pop()
                    ops.end = stream.tell()
                    return ops
                self.step(op.name, arg)
        except PickleScanError:
            raise
        except (
            ValueError,
            EOFError,
            KeyError,
            IndexError,
            TypeError,
            UnicodeDecodeError,
            OverflowError,
            MemoryError,
            RecursionError,
        ) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PickleScanError(f"malformed pickle: {msg}") from None
        raise PickleScanError("truncated pickle: no STOP opcode")

    def step(self, name: str, arg: Any) -> None:  # noqa: C901 - one branch per opcode group
        st = self.stack
        if name in _CONST_OPS:
            if name in ("SHORT_BINSTRING", "BINSTRING") and not _utf8(arg):
                self.result.non_utf8 = True
            st.append(arg)
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise PickleScanError(f"memo key {arg} read before it was written")
            st.append(self.memo[arg])
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            if not st:
                raise PickleScanError("stack underflow")
            self.put(arg, st[-1])
        elif name == "MEMOIZE":
            if not st:
                raise PickleScanError("stack underflow")
            self.put(len(self.memo), st[-1])
        elif name == "PROTO":
            self.result.protocol = arg
        elif name == "FRAME":
            pass
        elif name == "NONE":
            st.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            st.append(name == "NEWTRUE")
        elif name == "MARK":
            self.metastack.append(self.stack)
            self.stack = []
        elif name == "EMPTY_LIST":
            st.append(SList())
        elif name == "EMPTY_DICT":
            st.append(SDict())
        elif name == "EMPTY_TUPLE":
            st.append(())
        elif name == "EMPTY_SET":
            st.append(SSet())
        elif name == "TUPLE":
            self.stack_after_mark(tuple(self.pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(st) < n:
                raise PickleScanError("stack underflow")
            items = tuple(st[-n:])
            del st[-n:]
            st.append(items)
        elif name == "LIST":
            self.stack_after_mark(SList(self.pop_mark()))
        elif name == "DICT":
            items = self.pop_mark()
            if len(items) % 2:
                raise PickleScanError("DICT with an odd number of items")
            _require_hashable(items[::2], "dict key")
            self.stack_after_mark(SDict(list(zip(items[::2], items[1::2], strict=False))))
        elif name == "FROZENSET":
            items = self.pop_mark()
            _require_hashable(items, "frozenset item")
            self.stack_after_mark(SSet(items, frozen=True))
        elif name == "APPEND":
            value = self.pop()
            self.append_to(st[-1] if st else None, [value])
        elif name == "APPENDS":
            items = self.pop_mark()
            self.append_to(self.stack[-1] if self.stack else None, items)
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self.setitems(st[-1] if st else None, [(key, value)])
        elif name == "SETITEMS":
            items = self.pop_mark()
            if len(items) % 2:
                raise PickleScanError("SETITEMS with an odd number of items")
            self.setitems(
                self.stack[-1] if self.stack else None, list(zip(items[::2], items[1::2], strict=False))
            )
        elif name == "ADDITEMS":
            items = self.pop_mark()
            target = self.stack[-1] if self.stack else None
            if not isinstance(target, SSet):
                raise PickleScanError("ADDITEMS on a non-set")
            _require_hashable(items, "set item")
            target.items.extend(items)
        elif name == "POP":
            if st:
                st.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            if not st:
                raise PickleScanError("stack underflow")
            st.append(st[-1])
        elif name == "GLOBAL":
            module, _, gname = str(arg).partition(" ")
            st.append(self.make_global(module, gname))
        elif name == "STACK_GLOBAL":
            gname, module = self.pop(), self.pop()
            st.append(self.make_global(module, gname))
        elif name == "INST":
            module, _, gname = str(arg).partition(" ")
            g = self.make_global(module, gname)
            args = tuple(self.pop_mark())
            self.stack.append(self.call(g, args, "INST"))
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise PickleScanError("OBJ without a class")
            self.stack.append(self.call(items[0], tuple(items[1:]), "OBJ"))
        elif name == "NEWOBJ":
            args, cls = self.pop(), self.pop()
            st.append(self.call(cls, args, "NEWOBJ"))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = self.pop(), self.pop(), self.pop()
            st.append(self.call(cls, (args, kwargs), "NEWOBJ_EX"))
        elif name == "REDUCE":
            args, func = self.pop(), self.pop()
            st.append(self.call(func, args, "REDUCE"))
        elif name == "BUILD":
            state = self.pop()
            if not st:
                raise PickleScanError("stack underflow")
            self.build(st[-1], state)
        elif name in ("PERSID", "BINPERSID"):
            pid = PersId(arg if name == "PERSID" else self.pop())
            if not (isinstance(pid.pid, tuple) and pid.pid and pid.pid[0] == "storage"):
                # torch's loaders assert a ('storage', ...) tuple; pickle.load has no persistent ids
                self.result.oddities.append(f"persistent id {_describe(pid.pid)} is not a storage reference")
            self.result.persistent_ids.append(pid)
            st.append(pid)
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.issue(
                "dynamic",
                f"copyreg extension {arg}",
                "extension-registry global: resolved at load time, cannot be checked statically",
            )
            st.append(Global("copyreg", f"extension:{arg}"))
        elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            self.issue("dynamic", name, "out-of-band buffer: contents supplied at load time")
            st.append(None)
        else:
            raise PickleScanError(f"unsupported opcode {name}")

    def stack_after_mark(self, value: Any) -> None:
        self.stack.append(value)

    def put(self, key: int, value: Any) -> None:
        if len(self.memo) >= MAX_MEMO:
            raise PickleScanError(f"memo larger than {MAX_MEMO:,} entries")
        self.memo[key] = value

    def append_to(self, target: Any, items: list) -> None:
        if isinstance(target, SList):
            target.items.extend(items)
        elif isinstance(target, Call):
            self.issue("call", _describe(target), "APPEND(S) onto an object calls its append/extend method")
            target.appends.extend(items)
        else:
            raise PickleScanError(f"APPEND onto {_describe(target)}")

    def setitems(self, target: Any, pairs: list) -> None:
        _require_hashable([k for k, _ in pairs], "dict key")
        if isinstance(target, SDict):
            target.items.extend(pairs)
        elif isinstance(target, Call):
            fn = target.func
            if not (isinstance(fn, Global) and (fn.module, fn.name) == ("collections", "OrderedDict")):
                self.issue("call", _describe(target), "SETITEM(S) onto an object calls its __setitem__")
            target.items.extend(pairs)
        else:
            raise PickleScanError(f"SETITEM onto {_describe(target)}")


# Callables whose result is a mutable container: unhashable, so never a dict key or set item.
_UNHASHABLE_RESULTS = frozenset({
    ("collections", "OrderedDict"), ("collections", "Counter"), ("collections", "defaultdict"),
    *((m, n) for m in ("builtins", "__builtin__") for n in ("set", "dict", "list", "bytearray")),
})  # fmt: skip


def _unhashable(value: Any) -> bool:
    """Whether the unpickler's object for `value` cannot be hashed (list, dict, set, or a tuple
    holding one): used as a dict key or set item, it makes loading fail with a TypeError."""
    if isinstance(value, SList | SDict) or (isinstance(value, SSet) and not value.frozen):
        return True
    if isinstance(value, tuple):
        return any(_unhashable(v) for v in value)
    return (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and (value.func.module, value.func.name) in _UNHASHABLE_RESULTS
    )


def _require_hashable(keys: Any, what: str) -> None:
    for key in keys:
        if _unhashable(key):
            raise PickleScanError(f"unhashable {what} ({_describe(key)}): the unpickler fails here")


def _pairs_ok(args: Any) -> bool:
    """OrderedDict(), or OrderedDict(seq) whose items are all (key, value) pairs."""
    if args == ():
        return True
    if not isinstance(args, tuple) or len(args) != 1:
        return False
    seq = args[0].items if isinstance(args[0], SList) else args[0]
    if not isinstance(seq, tuple | list):
        return False
    return all(
        isinstance(p := (item.items if isinstance(item, SList) else item), tuple | list)
        and len(p) == 2
        and not _unhashable(p[0])
        for item in seq
    )


def _utf8(text: Any) -> bool:
    """pickletools hands Python 2 byte strings over as latin-1 text: are the bytes UTF-8?"""
    try:
        str(text).encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def _describe(value: Any) -> str:
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, Call):
        return f"result of {_describe(value.func)}(...)"
    if isinstance(value, str):
        return value
    return type(value).__name__


def scan_pickle(stream: Any, member: str = "", torchscript: bool = False) -> PickleResult:
    """Interpret one pickle from `stream` (positioned at its first opcode) up to its STOP.

    `stream` must support read/readline/tell (bytes via io.BytesIO, or an mmap so that a
    forged length field can never make the reader allocate more than the file holds).
    Raises PickleScanError when the pickle cannot be interpreted to its end.
    """
    interp = _Interp(member, stream, torchscript)
    try:
        return interp.run(stream)
    except PickleScanError as err:
        err.partial = interp.result
        raise


def scan_bytes(data: bytes, member: str = "", torchscript: bool = False) -> PickleResult:
    """`scan_pickle` over an in-memory pickle."""
    return scan_pickle(io.BytesIO(data), member, torchscript)


# --- tensors from the symbolic object -------------------------------------------------

STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32",
    "UntypedStorage": "uint8",
}  # fmt: skip
DTYPE_SIZES = {
    "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
    "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16, "qint8": 1, "quint8": 1,
    "qint32": 4, "uint16": 2, "uint32": 4, "uint64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1,
    "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1,
}  # fmt: skip
_DTYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
}

_REBUILD_TENSOR = {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_qtensor"}
_REBUILD_PARAM = {"_rebuild_parameter", "_rebuild_parameter_with_state"}


@dataclass(frozen=True)
class StaticTensor:
    """Tensor metadata recovered without loading: name, dtype, shape, storage record."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    storage_key: str
    storage_offset: int
    storage_numel: int  # elements of the storage's own dtype (bytes for UntypedStorage)
    storage_dtype: str
    # bytes of the storage the tensor spans (offset + last strided element + 1), -1 if unknown
    span_bytes: int = -1
    # every storage the tensor is rebuilt from (more than one for sparse tensors), and the ids
    # of the symbolic calls that build it (for "every rebuild is listed")
    storage_keys: frozenset[str] = frozenset()
    calls: frozenset[int] = frozenset()


def _numpy_itemsize(dtype: Any) -> tuple[int | None, bool]:
    """(itemsize, is_object) of a symbolic `numpy.dtype('f4', ...)` call."""
    if (
        isinstance(dtype, Call)
        and isinstance(dtype.args, tuple)
        and dtype.args
        and isinstance(dtype.args[0], str)
    ):
        code = dtype.args[0].lstrip("<>|=")
        if code.startswith("O"):
            return None, True
        digits = "".join(ch for ch in code if ch.isdigit())
        if code[:1] in "fiucbV" and digits:
            return int(digits), False
    return None, False


def numpy_dtype_name(code: str) -> str:
    """'<f4' -> 'float32', '|b1' -> 'bool', '<i8' -> 'int64' (else the code itself)."""
    c = code.lstrip("<>|=")
    if c == "b1" or c == "?":
        return "bool"
    kinds = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
    if c[:1] in kinds and c[1:].isdigit():
        bits = int(c[1:]) * 8
        return f"{kinds[c[0]]}{bits}"
    return c


def _as_tuple(v: Any) -> tuple | None:
    if isinstance(v, tuple):
        return v
    if (
        isinstance(v, Call)
        and isinstance(v.func, Global)
        and v.func.dotted == "torch.Size"
        and isinstance(v.args, tuple)
        and v.args
        and isinstance(v.args[0], tuple)
    ):
        return v.args[0]
    return None


QUANTIZED_DTYPES = frozenset({"qint8", "quint8", "qint32"})


def _storage_info(pid: Any) -> tuple[str, str, int] | None:
    """(key, storage dtype, numel) from a torch persistent id ('storage', type, key, loc, numel)."""
    if not isinstance(pid, PersId) or not isinstance(pid.pid, tuple) or len(pid.pid) < 5:
        return None
    tag, stype, key, _loc, numel = pid.pid[:5]
    if tag != "storage" or not isinstance(stype, Global) or not isinstance(numel, int):
        return None
    dtype = STORAGE_DTYPES.get(stype.name)
    if dtype is None:
        return None
    return str(key), dtype, numel


def tensor_of(value: Any) -> tuple[str, tuple[int, ...], tuple[str, str, int], int] | None:
    """(dtype, shape, storage, offset) if `value` is a symbolic tensor rebuild, else None."""
    if not isinstance(value, Call) or not isinstance(value.func, Global):
        return None
    fn = value.func
    args = value.args if isinstance(value.args, tuple) else ()
    if fn.module == "torch._utils" and fn.name in _REBUILD_PARAM and args:
        arity = 4 if fn.name == "_rebuild_parameter_with_state" else 3
        if len(args) != arity or not isinstance(args[1], bool) or not _empty_hooks(args[2]):
            return None  # torch would fail to call it: no tensor
        return tensor_of(args[0])
    if fn.module == "torch._utils" and fn.name == "_rebuild_sparse_tensor" and len(args) >= 2:
        return _sparse_of(args[1])
    if fn.module == "torch._utils" and fn.name in _REBUILD_TENSOR and len(args) in _REBUILD_ARITY[fn.name]:
        storage = _storage_info(args[0])
        shape, stride = _as_tuple(args[2]), _as_tuple(args[3])
        if storage is None or shape is None or not all(isinstance(s, int) and s >= 0 for s in shape):
            return None
        if stride is None or len(stride) != len(shape) or not all(isinstance(s, int) for s in stride):
            return None
        if not isinstance(args[1], int) or args[1] < 0:
            return None
        if fn.name == "_rebuild_qtensor" and not (
            storage[1] in QUANTIZED_DTYPES
            and _valid_qparams(args[4]) and isinstance(args[5], bool) and _empty_hooks(args[6])
        ):
            return None  # torch refuses to build a quantized tensor on a non-quantized storage
        if fn.name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3") and not (
            isinstance(args[4], bool) and _empty_hooks(args[5])
        ):
            return None
        dtype = storage[1]
        if fn.name == "_rebuild_tensor_v3":
            named = args[6]
            if not (isinstance(named, Global) and named.module == "torch" and named.name in TORCH_DTYPES):
                return None  # torch.empty(dtype=...) refuses anything but a dtype
            name = args[6].name
            dtype = _DTYPE_ALIASES.get(name, name)
        offset = args[1] if isinstance(args[1], int) else 0
        return dtype, tuple(shape), storage, offset
    return None


# Allowlisted callables with a fixed most-arguments count (more arguments: loading fails).
_MAX_ARGS = {
    ("collections", "OrderedDict"): 1, ("torch", "Size"): 1, ("torch", "device"): 2,
    ("torch.nn.parameter", "Parameter"): 2,
    **{(m, "set"): 1 for m in ("builtins", "__builtin__")},
    **{(m, "complex"): 2 for m in ("builtins", "__builtin__")},
    **{(m, "bytearray"): 3 for m in ("builtins", "__builtin__")},
    # numpy's pickle helpers: _reconstruct(subtype, shape, dtype), scalar(dtype[, bytes])
    **{(m, "_reconstruct"): 3 for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): 2 for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
}  # fmt: skip
# ... and the fewest they take (fewer arguments: loading fails too)
_MIN_ARGS = {
    **{(m, "_reconstruct"): 3 for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): 1 for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
}
# Argument counts torch's rebuild functions accept (a call with another count fails to load).
_REBUILD_ARITY = {
    "_rebuild_tensor": (4,),
    "_rebuild_tensor_v2": (6, 7),
    "_rebuild_tensor_v3": (7, 8),
    "_rebuild_qtensor": (7,),
}
_QSCHEMES = {
    "per_tensor_affine": 3, "per_tensor_symmetric": 3, "per_channel_affine": 4,
    "per_channel_symmetric": 4, "per_channel_affine_float_qparams": 4,
}  # fmt: skip


def _empty_hooks(value: Any) -> bool:
    """The backward-hooks argument torch writes: `OrderedDict()` (old files: None, or
    `OrderedDict([])` through REDUCE)."""
    if value is None:
        return True
    if isinstance(value, SDict):
        return not value.items
    if not (isinstance(value, Call) and isinstance(value.func, Global)):
        return False
    empty_args = value.args == () or (
        isinstance(value.args, tuple)
        and len(value.args) == 1
        and (value.args[0] == () or (isinstance(value.args[0], SList) and not value.args[0].items))
    )
    return value.func.dotted == "collections.OrderedDict" and empty_args and not value.items


def _valid_qparams(params: Any) -> bool:
    """(qscheme, scale, zero_point) or (qscheme, scales, zero_points, axis), as torch writes."""
    if not isinstance(params, tuple) or not params or not isinstance(params[0], Global):
        return False
    q = params[0]
    if q.module != "torch" or _QSCHEMES.get(q.name) != len(params):
        return False
    if len(params) == 3:
        return isinstance(params[1], float) and isinstance(params[2], int) and not isinstance(params[2], bool)
    return isinstance(params[3], int)


def _sparse_of(data: Any) -> tuple[str, tuple[int, ...], tuple[str, str, int], int] | None:
    """A sparse tensor's (dtype, shape, storage, offset): its values' dtype and storage, the
    dense shape it declares. torch writes (indices, values, size, ...) for COO layouts and
    (compressed, plain, values, size) for CSR/CSC/BSR/BSC."""
    if not isinstance(data, tuple):
        return None
    for i, item in enumerate(data[1:], start=1):
        shape = _as_tuple(item)
        if shape is not None and all(isinstance(n, int) for n in shape):
            values = tensor_of(data[i - 1])
            if values is None:
                return None
            return values[0], tuple(shape), values[2], 0
    return None


def parts_within(value: Any, limit: int = 64) -> tuple[set[str], set[int]]:
    """(storage keys, ids of calls) inside one tensor rebuild: a sparse tensor holds two or
    three storages, a Parameter wraps a tensor, a per-channel qtensor holds scale tensors."""
    keys: set[str] = set()
    calls: set[int] = set()
    todo = [value]
    while todo and limit > 0:
        limit -= 1
        item = todo.pop()
        if isinstance(item, PersId):
            info = _storage_info(item)
            if info is not None:
                keys.add(info[0])
        elif isinstance(item, Call):
            calls.add(id(item))
            todo.append(item.args)
        elif isinstance(item, tuple):
            todo.extend(item)
    return keys, calls


def tensor_span_bytes(value: Any, dtype: str) -> int:
    """Bytes of its storage a symbolic tensor rebuild spans: (offset + the last element its
    strides reach + 1) x item size; 0 for an empty tensor, -1 when sizes or strides are not
    plain integers (then nothing is claimed)."""
    rebuilt = value
    while (
        isinstance(rebuilt, Call)
        and isinstance(rebuilt.func, Global)
        and rebuilt.func.name in _REBUILD_PARAM
        and isinstance(rebuilt.args, tuple)
        and rebuilt.args
    ):
        rebuilt = rebuilt.args[0]
    args = rebuilt.args if isinstance(rebuilt, Call) and isinstance(rebuilt.args, tuple) else ()
    if len(args) < 4:
        return -1
    offset, shape, stride = args[1], _as_tuple(args[2]), _as_tuple(args[3])
    if not isinstance(offset, int) or shape is None or stride is None or len(shape) != len(stride):
        return -1
    if not all(isinstance(v, int) for v in (*shape, *stride)):
        return -1
    if any(n == 0 for n in shape):
        return 0
    last = offset + sum((n - 1) * st for n, st in zip(shape, stride, strict=True))
    return (last + 1) * DTYPE_SIZES.get(dtype, 1)


def array_of(value: Any) -> tuple[str, tuple[int, ...]] | None:
    """(dtype, shape) of a symbolic numpy array (ndarray reconstruct or joblib wrapper)."""
    if not isinstance(value, Call) or not isinstance(value.func, Global):
        return None
    key = (value.func.module, value.func.name)
    if key in JOBLIB_WRAPPERS and isinstance(value.state, SDict):
        items = {k: v for k, v in value.state.items if isinstance(k, str)}
        shape, dtype = items.get("shape"), items.get("dtype")
    elif (
        key[1] == "_reconstruct"
        and key[0] in ("numpy._core.multiarray", "numpy.core.multiarray")
        and isinstance(value.state, tuple)
        and len(value.state) >= 3
    ):
        shape, dtype = value.state[1], value.state[2]
    else:
        return None
    if not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape):
        return None
    code = dtype.args[0] if isinstance(dtype, Call) and isinstance(dtype.args, tuple) and dtype.args else "?"
    return numpy_dtype_name(str(code)), shape


def _dict_items(value: Any) -> list | None:
    if isinstance(value, SDict):
        return value.items
    if (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.dotted == "collections.OrderedDict"
    ):
        return _constructor_pairs(value.args) + value.items
    return None


def _constructor_pairs(args: Any) -> list:
    """The (key, value) pairs of `OrderedDict(iterable)`: old torch (Python 2's
    OrderedDict.__reduce__) writes state dicts as `OrderedDict([[k, v], ...])` through REDUCE,
    so the items are in the argument list, not in SETITEMS."""
    if not isinstance(args, tuple) or len(args) != 1:
        return []
    seq = args[0].items if isinstance(args[0], SList) else args[0]
    if not isinstance(seq, tuple | list):
        return []
    pairs = []
    for item in seq:
        pair = item.items if isinstance(item, SList) else item
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise PickleScanError("OrderedDict built from an item that is not a (key, value) pair")
        pairs.append((pair[0], pair[1]))
    return pairs


def walk_tensors(
    root: Any, max_nodes: int = 2_000_000, arrays: bool = False, objects: bool = False
) -> Iterator[tuple[str, Any]]:
    """(dotted name, leaf) for tensors and plain scalars in the symbolic object, in order.

    Names follow the flattened object like mlaudit's torch reader: dict keys and list
    indices joined by dots (`state_dict.fc.weight`, `optimizer.state.0.exp_avg`).
    """
    budget = [max_nodes]
    active: set[int] = set()

    def rec(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        budget[0] -= 1
        if budget[0] < 0:
            raise PickleScanError(f"object graph larger than {max_nodes:,} nodes")
        if tensor_of(value) is not None or (arrays and array_of(value) is not None):
            yield prefix, value
            return
        if id(value) in active:  # a cycle: not plain data we can name
            return
        items = _dict_items(value)
        if items is not None:
            active.add(id(value))
            for k, v in items:
                key = k if isinstance(k, (str, int, float, bool)) or k is None else _describe(k)
                yield from rec(v, f"{prefix}.{key}" if prefix else str(key))
            active.discard(id(value))
        elif isinstance(value, (SList, tuple)):
            seq = value.items if isinstance(value, SList) else value
            active.add(id(value))
            for i, v in enumerate(seq):
                yield from rec(v, f"{prefix}.{i}" if prefix else str(i))
            active.discard(id(value))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            yield prefix, value
        elif objects and isinstance(value, Call) and isinstance(value.state, SDict):
            # TorchScript modules: attributes (parameters, submodules) live in BUILD state.
            active.add(id(value))
            for k, v in value.state.items:
                if k != "training":
                    yield from rec(v, f"{prefix}.{k}" if prefix else str(k))
            active.discard(id(value))

    yield from rec(root, "")


def static_tensors(
    root: Any, arrays: bool = False, objects: bool = False
) -> tuple[list[StaticTensor], dict[str, Any]]:
    """Tensor records and plain metadata leaves of a symbolic torch object.

    `arrays=True` also reports numpy arrays (plain pickles and joblib files), each as its
    own storage."""
    tensors: list[StaticTensor] = []
    meta: dict[str, Any] = {}
    for name, leaf in walk_tensors(root, arrays=arrays, objects=objects):
        t = tensor_of(leaf)
        if t is None:
            arr = array_of(leaf) if arrays else None
            if arr is not None:
                numel = 1
                for s in arr[1]:
                    numel *= s
                tensors.append(StaticTensor(name, arr[0], arr[1], f"array:{name}", 0, numel, arr[0]))
            else:
                meta[name] = leaf
            continue
        dtype, shape, (key, sdtype, numel), offset = t
        span = tensor_span_bytes(leaf, dtype)
        keys, calls = parts_within(leaf)
        parts = (frozenset(keys), frozenset(calls))
        tensors.append(StaticTensor(name, dtype, shape, key, offset, numel, sdtype, span, *parts))
    return tensors, meta


def top_level_keys(root: Any) -> tuple[str, ...]:
    items = _dict_items(root)
    return tuple(str(k) for k, _ in items) if items is not None else ()


def uses_global(result: PickleResult, module_prefix: str) -> bool:
    return any(m == module_prefix or m.startswith(module_prefix + ".") for m, _ in result.globals)
