"""Per-format readers: from a file's bytes (an mmap) to tensor metadata and a safety verdict.

Nothing here imports torch or unpickles anything. Every length field is checked against the
bytes that exist before anything is allocated, archives are bounded in depth and size, and
any failure is a `ReadError` with a one-line reason (the file is then inconclusive).
"""

from __future__ import annotations

import ast
import io
import json
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlaudit.inputs import InputError, remote
from mlaudit.inputs.checkpoint import accounting, archives, onnx_proto
from mlaudit.inputs.checkpoint import pickle_scan as ps
from mlaudit.inputs.checkpoint.sniff import MAX_SAFETENSORS_HEADER, data_kind, looks_like_pickle, sniff
from mlaudit.inputs.checkpoint.types import (
    DTYPE_BYTES,
    LayoutProblem,
    Parsed,
    ReadError,
    TensorInfo,
    escapes_dir,
)
from mlaudit.inputs.checkpoint.zipread import Member, TolerantZip, ZipError

MAX_DEPTH = 3  # archives inside archives inside archives
MAX_PICKLE_BYTES = 512 * 1024 * 1024  # one pickle member, decompressed
MAX_NESTED_BYTES = 256 * 1024 * 1024  # one nested archive read into memory
MAX_TOTAL_INFLATE = 1024 * 1024 * 1024  # everything decompressed for one file
MAX_JSON_BYTES = 64 * 1024 * 1024
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
PARTIAL_NOTE = "the unsafe globals met before that point are reported"
# After the magic number, torch's legacy format stacks these pickles, then raw storages.
LEGACY_PICKLES = (
    "legacy protocol pickle",
    "legacy sys_info pickle",
    "legacy main pickle",
    "legacy storage-keys pickle",
)
STORAGE_MEMBER = re.compile(r"(^|/)(\.?data)/[^/]+$")

SAFETENSORS_DTYPES = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1),
    "U64": ("uint64", 8), "U32": ("uint32", 4), "U16": ("uint16", 2), "U8": ("uint8", 1),
    "BOOL": ("bool", 1), "F8_E4M3": ("float8_e4m3fn", 1), "F8_E5M2": ("float8_e5m2", 1),
    "C64": ("complex64", 8),
}  # fmt: skip
EXPORT_DTYPES = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
    8: "float64", 10: "complex64", 11: "complex128", 12: "bool", 13: "bfloat16",
}  # fmt: skip


# Formats whose files exist to hold tensors: a non-empty one in which the scan finds none has
# nothing the verdict could stand on (issue 11), so it is inconclusive. Plain pickles and joblib
# files are left out: their whole content is the pickle, parsed to the end (a vocabulary or
# label encoder holds no tensor by nature), and tensors hidden in them still surface through
# storage accounting. Bundles (zip, archive) of text or images are not model files either.
TENSOR_FORMATS = frozenset({"torch-zip", "torch-legacy", "lightning", "safetensors", "numpy", "npz"})


def read_any(buf: Any, path: Path, rel: str, size: int) -> Parsed:
    """Dispatch on content. `buf` is an mmap of the whole file (nothing is copied up front)."""
    out = _read_by_kind(buf, path, size)
    if out.format in TENSOR_FORMATS and not out.tensors and not any(i.is_error for i in out.issues):
        out.inconclusive.append(
            f"{out.format} file of {size:,} bytes in which the scan found no tensor: nothing a loader "
            "reads could be checked (empty, or tensors stored in a way mlaudit cannot follow)"
        )
    return out


def _read_by_kind(buf: Any, path: Path, size: int) -> Parsed:
    try:
        kind = sniff(bytes(buf[:512]), path.name, size, buf)
    except InputError as err:
        raise ReadError(err.reason) from None
    if kind == "lfs-pointer":
        raise ReadError("not scannable: Git LFS pointer (run `git lfs pull` to fetch the real file)")
    if kind == "zip":
        out = Parsed("zip")
        _read_zip(buf, out, "", depth=0)
        return out
    if kind == "numpy":
        out = Parsed("numpy")
        _read_npy(buf, out, "array", "")
        return out
    if kind in ("pickle", "pickle0"):
        return _read_pickle_file(buf, size, strict=kind == "pickle")
    if kind == "safetensors":
        out = Parsed("safetensors")
        out.tensors = _read_safetensors(buf, size, out, prefix="")
        if looks_like_pickle(bytes(buf[:2])):
            _second_reading_as_pickle(buf, out)
        return out
    if kind == "safetensors-index":
        return _read_index(buf, path)
    if kind == "tar":
        out = Parsed("archive")
        archives.read_tar(buf, out, "", 0, _scan_member, MAX_NESTED_BYTES, MAX_TOTAL_INFLATE)
        return out
    if kind in ("gzip", "zlib"):
        data = _inflate(buf, kind)
        if archives.is_tar(data[:512]):
            out = Parsed("archive")
            out.inflated = len(data)
            archives.read_tar(data, out, "", 0, _scan_member, MAX_NESTED_BYTES, MAX_TOTAL_INFLATE)
            return out
        out = _read_pickle_file(data, len(data), strict=True)
        out.notes.append(f"{kind}-compressed pickle")
        if out.format == "pickle" and kind in ("gzip", "zlib"):
            out.format = "joblib" if any(g.startswith("joblib.") for g in out.globals_used) else "pickle"
        return out
    if kind == "onnx?":
        return _read_onnx(buf, path)
    raise ReadError(f"unsupported format {kind}")


# --- pickles -------------------------------------------------------------------------------


def _second_reading_as_pickle(buf: Any, out: Parsed) -> None:
    """A valid safetensors file that starts like a pickle: torch.load would unpickle it if it
    parses. Scan that reading too; if it parses, the stricter reading decides."""
    stream = buf if hasattr(buf, "seek") else io.BytesIO(bytes(buf))
    stream.seek(0)
    try:
        res = ps.scan_pickle(stream, "pickle reading")
    except ps.PickleScanError:
        out.notes.append("starts like a pickle (0x80 0x0N) but is none: read as safetensors by its structure")
        return
    out.absorb(res)
    out.inconclusive.append(
        "the bytes read two ways, as safetensors and as a pickle torch.load would unpickle; "
        "the stricter reading decides"
    )


def _scan(
    stream: Any, member: str, torchscript: bool = False, out: Parsed | None = None
) -> ps.PickleResult | None:
    """Scan one pickle. On a parse error: when `out` is given and the part before the error
    already named something unsafe, that is reported (absorbed into `out`) beside the parse
    error (inconclusive) and None is returned; otherwise ReadError."""
    try:
        return ps.scan_pickle(stream, member, torchscript)
    except ps.PickleScanError as err:
        message = f"{member or 'pickle'} cannot be fully parsed: {err}"
        partial = err.partial
        if out is not None and partial is not None and any(i.is_error for i in partial.issues):
            out.absorb(partial)
            out.inconclusive.append(f"{message} ({PARTIAL_NOTE})")
            return None
        raise ReadError(message) from None


def _read_pickle_file(buf: Any, size: int, strict: bool) -> Parsed:
    """Legacy torch format (five stacked pickles, then raw storages), or a plain/joblib pickle."""
    stream = buf if hasattr(buf, "seek") else io.BytesIO(buf)
    stream.seek(0)
    try:
        first = ps.scan_pickle(stream, "")
    except ps.PickleScanError as err:
        if not strict:
            raise ReadError(
                f"unrecognized checkpoint format (not a pickle, zip, safetensors, numpy or ONNX file: {err})"
            ) from None
        partial = err.partial
        if partial is not None and any(i.is_error for i in partial.issues):
            out = Parsed("pickle")
            out.absorb(partial)
            out.inconclusive.append(f"pickle cannot be fully parsed: {err} ({PARTIAL_NOTE})")
            return out
        raise ReadError(f"pickle cannot be fully parsed: {err}") from None
    if first.root == LEGACY_MAGIC and not first.issues:
        out = Parsed("torch-legacy")
        out.absorb(first)
        results = []
        for label in LEGACY_PICKLES:
            res = _scan(stream, label, out=out)
            if res is None:
                return out
            out.absorb(res)
            results.append(res)
        for res in (first, *results):
            _weights_only_opcodes(res, out)
        if results[0].root != 1001:  # torch refuses any other legacy protocol version
            out.inconclusive.append(f"legacy protocol version {results[0].root!r} (torch reads only 1001)")
        main = results[2].root
        named = _torch_tensors(out, main, member_prefix="")
        refs = accounting.storage_refs(results[2].persistent_ids)
        out.inconclusive += accounting.persistent_id_problems(results[2].persistent_ids, legacy=True)
        records, problems = accounting.legacy_records(buf, stream.tell(), size, results[3].root, refs)
        out.inconclusive += problems
        out.inconclusive += accounting.check_storages(refs, records, named, "", results[2].rebuilds)
        return out
    out = Parsed("pickle")
    out.absorb(first)
    if any(g.startswith("joblib.") for g in out.globals_used):
        out.format = "joblib"
    tensors, meta = ps.static_tensors(first.root, arrays=True)
    out.tensors = [_tinfo(t) for t in tensors]
    out.metadata = meta
    out.top_level_keys = ps.top_level_keys(first.root)
    # A second pickle right after the first is loaded by tools that call load() twice (and a
    # legacy torch file whose magic number is damaged looks like this): bytes the scan did not read.
    if stream.tell() < size:
        unread = size - stream.tell()
        out.inconclusive.append(f"{unread:,} bytes after the pickle's STOP opcode were not read")
    return out


def _tinfo(t: ps.StaticTensor) -> Any:

    per = DTYPE_BYTES.get(t.storage_dtype, 1)
    return TensorInfo(t.name, t.dtype, t.shape, t.storage_key, t.storage_offset, t.storage_numel * per)


def _torch_tensors(
    out: Parsed, root: Any, member_prefix: str, objects: bool = False
) -> list[ps.StaticTensor]:
    """List the tensors of a torch pickle's root object (names prefixed with the archive member
    they sit in, when nested); returns the static records for storage accounting."""
    tensors, meta = ps.static_tensors(root, objects=objects)
    for t in tensors:
        info = _tinfo(t)
        if member_prefix:
            info = replace(
                info, name=f"{member_prefix}:{info.name}", storage_key=f"{member_prefix}:{info.storage_key}"
            )
        out.tensors.append(info)
    out.metadata.update(meta)
    keys = ps.top_level_keys(root)
    if keys and not out.top_level_keys:
        out.top_level_keys = keys
    if out.format not in ("torch-zip", "torch-legacy"):
        return tensors
    if "pytorch-lightning_version" in keys or (
        "state_dict" in keys
        and {"optimizer_states", "hyper_parameters", "loops", "lr_schedulers"} & set(keys)
    ):
        out.format = "lightning"
    return tensors


# --- zip archives ----------------------------------------------------------------------------


def _peek(z: TolerantZip, m: Member, n: int) -> bytes:
    start = z.data_offset(m)
    if m.method == 0:
        return bytes(z.buf[start : start + min(n, m.compressed_size)])
    if m.method == 8:
        try:
            return zlib.decompressobj(-15).decompress(
                bytes(z.buf[start : start + min(m.compressed_size, 65536)]), n
            )
        except zlib.error:
            return b""
    return b""


def _read_member(z: TolerantZip, m: Member, out: Parsed, limit: int, zipfile_reads: bool = False) -> bytes:
    """The member's bytes. A bad CRC is a note where torch reads the archive (its miniz does not
    check CRCs) and inconclusive where Python's zipfile does (`zipfile_reads`: numpy's npz,
    bundles), since that loader refuses the member."""
    if out.inflated + m.size > MAX_TOTAL_INFLATE:
        raise ReadError(f"archive inflates beyond {MAX_TOTAL_INFLATE:,} bytes in total")
    try:
        data = z.read(m, limit)
    except ZipError as err:
        raise ReadError(str(err)) from None
    out.inflated += len(data)
    if not z.crc_ok(m, data):
        if zipfile_reads:
            out.inconclusive.append(f"member {m.name!r}: CRC mismatch: Python's zipfile (numpy) refuses it")
        else:
            out.notes.append(f"member {m.name!r} has a bad CRC (torch loads it anyway; scanned)")
    return data


def _read_zip(buf: Any, out: Parsed, where: str, depth: int, list_tensors: bool = True) -> None:
    """Scan every pickle in a zip (by central-directory name, like torch) and recurse into
    nested archives. Sets out.format from the layout when this is the outermost archive."""
    if depth > MAX_DEPTH:
        raise ReadError(f"archives nested deeper than {MAX_DEPTH} levels at {where}")
    try:
        z = TolerantZip(buf)
    except ZipError as err:
        raise ReadError(f"{where + ': ' if where else ''}{err}") from None
    out.notes.extend(z.notes)
    at = f"{where}: " if where else ""
    if z.notes:
        # torch trusts the central directory, Python's zipfile (numpy, scanners) refuses: the
        # file reads differently depending on the loader, so no reading is "the" file
        out.inconclusive.append(f"{at}{z.notes[0]}: loaders disagree on which member they read")
    names = [m.name for m in z.members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.inconclusive.append(
            f"{at}member(s) {dupes[:3]} appear more than once: loaders differ on which they read"
        )
    layout = _zip_layout(names)
    if depth == 0:
        out.format = layout
    torch_layout = layout in ("torch-zip", "torchscript")
    # storage records per directory ("data", "constants"), and the pickle that references them
    records: dict[str, dict[str, int]] = {"data": {}, "constants": {}}
    sources: dict[str, bytes] = {}  # TorchScript code members
    pickles: dict[str, tuple[ps.PickleResult, list[ps.StaticTensor] | None]] = {}
    for m in z.members:
        label = f"{where}/{m.name}" if where else m.name
        if m.is_dir:
            if m.size:  # zipfile (numpy) reads a "directory" entry's bytes like any member's
                out.inconclusive.append(f"{label}: a directory entry holding {m.size:,} bytes: not scanned")
            continue
        lower = m.name.lower()
        if lower.endswith(".pkl"):
            data = _read_member(z, m, out, MAX_PICKLE_BYTES)
            res = _scan(io.BytesIO(data), label, torchscript=layout == "torchscript", out=out)
            out.pickles += 1
            if res is None:
                continue
            out.absorb(res)
            stem = m.name.rsplit("/", 1)[-1][: -len(".pkl")]
            if layout == "torchscript":
                _torchscript_opcodes(res, out)
            if torch_layout and stem in records and _at_archive_root(m.name):
                if layout == "torch-zip":
                    _weights_only_opcodes(res, out)
                if layout == "torchscript" and stem == "constants" and not isinstance(res.root, tuple):
                    out.inconclusive.append(f"{label}: not a tuple: torch.jit.load refuses it")
                named = None
                if stem == "data" and list_tensors:
                    named = _torch_tensors(
                        out, res.root, member_prefix=where, objects=layout == "torchscript"
                    )
                pickles[stem] = (res, named)
            continue
        parts = m.name.split("/")
        if layout == "torchscript" and len(parts) >= 2 and parts[-2] == "constants" and len(parts) <= 3:
            records["constants"][parts[-1]] = m.size  # TorchScript constants' raw storages
            continue
        if torch_layout and STORAGE_MEMBER.search(m.name):
            if len(parts) >= 2 and parts[-2] in records and _at_archive_root("/".join(parts[:-1]) + ".pkl"):
                records[parts[-2]][parts[-1]] = m.size
            continue  # raw tensor bytes: never unpickled by torch
        if layout == "zip":
            _read_bundle_member(z, m, out, label, depth)
            continue
        if layout == "npz":
            # every member is an array numpy's npz loader hands out: each must be one
            data = _read_member(z, m, out, MAX_NESTED_BYTES, zipfile_reads=True)
            if not data.startswith(b"\x93NUMPY"):
                out.inconclusive.append(f"{label}: not a .npy array (numpy hands out its raw bytes)")
                continue
            stem = m.name[:-4] if m.name.endswith(".npy") else m.name
            _read_npy(data, out, f"{where + '/' if where else ''}{stem}", label)
            continue
        if layout == "torchscript" and not TORCHSCRIPT_MEMBER.search(m.name):
            out.inconclusive.append(f"{label}: not a member a TorchScript archive holds: not scanned")
            continue
        if layout == "torchscript" and m.name.endswith(".py"):
            sources[m.name] = _read_member(z, m, out, MAX_NESTED_BYTES)
            _torchscript_source(sources[m.name], z, m, out, label)
            continue
        head = _peek(z, m, 16)
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            inner = _read_member(z, m, out, MAX_NESTED_BYTES)
            _read_zip(inner, out, label, depth + 1, list_tensors=False)  # e.g. export sample inputs
        elif head.startswith(b"\x93NUMPY"):
            data = _read_member(z, m, out, MAX_NESTED_BYTES)
            stem = m.name[:-4] if m.name.endswith(".npy") else m.name
            _read_npy(data, out, f"{where + '/' if where else ''}{stem}", label)
        elif head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
            data = _read_member(z, m, out, MAX_PICKLE_BYTES)
            try:
                res = ps.scan_bytes(data, label, torchscript=layout == "torchscript")
            except ps.PickleScanError as err:
                if layout == "torchscript":  # debug pickles: torch.jit.load reads them too
                    out.inconclusive.append(f"{label}: pickle cannot be fully parsed: {err}")
                else:
                    out.notes.append(f"member {label!r} looks like a pickle but does not parse as one")
                continue
            out.absorb(res)
            out.pickles += 1
            if layout == "torchscript":  # debug pickles: read by the same C++ unpickler
                _torchscript_opcodes(res, out)
    if layout == "torchscript":
        _torchscript_classes(names, [res for res, _ in pickles.values()], sources, out, at)
        for res, _ in pickles.values():  # each tensor rebuild must be one torch can run
            bad = [c for c in res.rebuilds if ps.tensor_of(c) is None]
            if bad:
                out.inconclusive.append(
                    f"{res.member}: {len(bad)} tensor rebuild call(s) with arguments torch cannot use"
                )
        root = pickles["data"][0].root if "data" in pickles else None
        func = root.func if isinstance(root, ps.Call) else None
        if "data" in pickles and not (isinstance(func, ps.Global) and func.module.startswith("__torch__.")):
            out.inconclusive.append(f"{at}data.pkl's root is no TorchScript module: torch.jit.load fails")
        if "data" in pickles:
            from mlaudit.inputs.checkpoint.torchscript_types import declared_classes, state_problems

            problems = state_problems(pickles["data"][0].root, declared_classes(sources))
            out.inconclusive += [f"{at}{p}: torch.jit.load refuses it" for p in problems]
    if torch_layout:
        _torch_archive_shape(names, out, at)
        _torch_small_records(z, out, at)
        if "data" not in pickles and not any(i.is_error for i in out.issues):
            out.inconclusive.append(f"{at}torch archive whose data.pkl could not be read")
        for stem, (res, named) in pickles.items():
            refs = accounting.storage_refs(res.persistent_ids)
            out.inconclusive += accounting.persistent_id_problems(res.persistent_ids, legacy=False)
            # TorchScript lists module attributes, not every tensor its code holds: only the
            # storages themselves are accounted for there
            names = named if layout == "torch-zip" and list_tensors else None
            out.inconclusive += accounting.check_storages(refs, records[stem], names, where, res.rebuilds)
    if layout == "torch-export" and depth == 0:
        _export_weights(z, out)


def _torchscript_source(data: bytes, z: TolerantZip, m: Member, out: Parsed, label: str) -> None:
    """A TorchScript archive's code member: torch.jit.load compiles it (mlaudit never does).
    The scan can vouch for it only as written by torch: intact (its CRC, which torch itself
    does not check), UTF-8, and Python syntax; anything else is inconclusive."""
    if not z.crc_ok(m, data):
        out.inconclusive.append(f"{label}: CRC mismatch: TorchScript code altered after it was written")
        return
    try:
        ast.parse(data.decode("utf-8"), label)
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError) as err:
        out.inconclusive.append(f"{label}: TorchScript code torch cannot compile ({type(err).__name__})")


# What a TorchScript archive holds (below its top folder): its pickles, raw storages, code and
# its debug pickles, small records, and the user's extra files (read only on request).
TORCHSCRIPT_MEMBER = re.compile(
    r"^(?:[^/]+/)?(?:data\.pkl|constants\.pkl|data/\d+|constants/\d+|code/__torch__/[\w/]+\.py"
    r"|code/__torch__/[\w/]+\.py\.debug_pkl|version|\.data/version|byteorder|\.data/serialization_id"
    r"|\.format_version|\.storage_alignment|extra/.+)$"
)
TORCHSCRIPT_REF = re.compile(rb"__torch__(?:\.\w+)+")
# The opcodes TorchScript's C++ unpickler executes (torch/csrc/jit/serialization/unpickler.cpp):
# any other one makes torch.jit.load fail.
TORCHSCRIPT_OPCODES = frozenset({
    "PROTO", "STOP", "MARK", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_DICT", "BINPUT", "LONG_BINPUT",
    "BINGET", "LONG_BINGET", "NEWTRUE", "NEWFALSE", "NONE", "BININT1", "BININT2", "BININT", "LONG1",
    "BINUNICODE", "BINFLOAT", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "APPENDS", "LIST", "DICT",
    "SETITEMS", "SETITEM", "GLOBAL", "NEWOBJ", "BUILD", "REDUCE", "BINPERSID",
})  # fmt: skip


def _torchscript_opcodes(res: ps.PickleResult, out: Parsed) -> None:
    extra = sorted(res.opcode_names - TORCHSCRIPT_OPCODES)
    if extra:
        out.inconclusive.append(
            f"{res.member}: pickle opcode(s) {', '.join(extra[:4])} that TorchScript's unpickler "
            "does not execute: torch.jit.load refuses it"
        )


def _torchscript_classes(
    names: list[str], results: list[ps.PickleResult], sources: dict[str, bytes], out: Parsed, at: str
) -> None:
    """Every TorchScript module a pickle or a code member names (`__torch__.a.b.C`) is
    compiled from its code member (`code/__torch__/a/b.py`): a missing one makes torch.jit.load
    fail."""
    top = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
    present = set(names)
    dotted = {f"{module}.{name}" for res in results for module, name in res.globals}
    for text in sources.values():
        dotted.update(ref.decode() for ref in TORCHSCRIPT_REF.findall(text))
    for ref in sorted(dotted):
        parts = ref.split(".")
        if parts[0] != "__torch__" or len(parts) < 3:
            continue
        # `__torch__.a.b.Name` (a class or a function) is defined in code/__torch__/a/b.py,
        # `__torch__.a.b.Class.__new__` (a special method) in the same file
        modules = [parts[:-1]] + ([parts[:-2]] if parts[-1].startswith("__") and len(parts) > 3 else [])
        if not any(f"{top}code/{'/'.join(m)}.py" in present for m in modules):
            out.inconclusive.append(f"{at}TorchScript name {ref} has no code member that defines it")
            return


def _torch_archive_shape(names: list[str], out: Parsed, at: str) -> None:
    """torch's archive reader requires every member under one top folder and a version record."""
    top = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
    outside = [n for n in names if not n.startswith(top)] if top else names
    if outside:
        out.inconclusive.append(f"{at}member(s) {outside[:3]} outside the archive's folder: torch refuses it")
    if top and f"{top}version" not in names and f"{top}.data/version" not in names:
        out.inconclusive.append(f"{at}no version record: torch refuses the file")


# Small text records torch reads and parses when it opens an archive: what each must hold.
_SMALL_RECORDS = {
    "version": re.compile(r"[0-9]+\n?"), ".data/version": re.compile(r"[0-9]+\n?"),
    "byteorder": re.compile(r"little|big"), ".format_version": re.compile(r"[0-9]+\n?"),
    ".storage_alignment": re.compile(r"[0-9]+\n?"),
    # handed to Python as a str (torch.load's metadata hook): any UTF-8 text
    ".data/serialization_id": re.compile(r"[^\x00]*", re.DOTALL),
}  # fmt: skip


def _torch_small_records(z: TolerantZip, out: Parsed, at: str) -> None:
    """version / byteorder records with content torch cannot parse make it refuse the file."""
    for m in z.members:
        rest = m.name.split("/", 1)[1] if "/" in m.name else m.name
        pattern = _SMALL_RECORDS.get(rest)
        if pattern is None:
            continue
        if m.size > 64:
            out.inconclusive.append(
                f"{at}record {m.name!r} of {m.size:,} bytes: torch reads a short text there"
            )
            continue
        try:
            text = _read_member(z, m, out, 64).decode("utf-8")
        except (ReadError, UnicodeDecodeError):
            text = "\x00"
        if not pattern.fullmatch(text):
            out.inconclusive.append(f"{at}record {m.name!r} holds {text[:16]!r}: torch cannot parse it")


def _weights_only_opcodes(res: ps.PickleResult, out: Parsed) -> None:
    """torch.load(weights_only=True) executes only some opcodes: a torch pickle using another
    one is refused by torch, so the scan's reading is not what a loader gets."""
    if res.non_utf8:
        where = f"{res.member}: " if res.member else ""
        out.inconclusive.append(f"{where}a byte string that is not UTF-8: torch cannot decode it")
    extra = sorted(res.opcode_names - ps.WEIGHTS_ONLY_OPCODES)
    if extra:
        where = f"{res.member}: " if res.member else ""
        out.inconclusive.append(
            f"{where}uses pickle opcode(s) {', '.join(extra[:4])} that torch.load(weights_only=True) "
            "does not execute: torch refuses the file"
        )


def _at_archive_root(name: str) -> bool:
    """`data.pkl` or `<one folder>/data.pkl`: where torch looks for a record (not deeper)."""
    return name.count("/") <= 1


def _read_bundle_member(z: TolerantZip, m: Member, out: Parsed, label: str, depth: int) -> None:
    """A member of a zip that is no torch archive: a release bundle. Read it like a file."""
    if m.size > MAX_NESTED_BYTES:
        out.inconclusive.append(
            f"{label}: {m.size:,} bytes, more than the {MAX_NESTED_BYTES:,} mlaudit reads"
        )
        return
    _scan_member(_read_member(z, m, out, MAX_NESTED_BYTES, zipfile_reads=True), out, label, depth)


def _scan_member(data: bytes, out: Parsed, label: str, depth: int) -> None:
    """Scan one archive member as if it had been named on its own; every member must be
    explained: a model file scanned, text, or a known data format (images, audio ...)."""
    if not data:
        return
    if depth + 1 > MAX_DEPTH:
        raise ReadError(f"archives nested deeper than {MAX_DEPTH} levels at {label}")
    try:
        kind = sniff(data[:512], label, len(data), data)
    except InputError:
        kind = "unknown"
    if kind == "zip":
        _read_zip(data, out, label, depth + 1)
    elif kind == "tar":
        archives.read_tar(data, out, label, depth + 1, _scan_member, MAX_NESTED_BYTES, MAX_TOTAL_INFLATE)
    elif kind == "numpy":
        _read_npy(data, out, label[:-4] if label.endswith(".npy") else label, label)
    elif kind == "safetensors":
        out.tensors += _read_safetensors(data, len(data), out, prefix=label)
    elif kind in ("pickle", "gzip") or (kind == "pickle0" and data_kind(data[:4096]) is None):
        try:
            inner = _read_by_kind(data, Path(label), len(data)) if kind == "gzip" else None
            if inner is None:
                inner = _read_pickle_file(data, len(data), strict=True)
        except ReadError as err:
            out.inconclusive.append(f"{label}: {err}")
            return
        _merge(out, inner, label)
    elif data_kind(data[:4096]) is not None:
        return  # text or a known data format: explained, nothing a loader unpickles
    else:
        out.inconclusive.append(f"{label}: content not recognised (starts with {data[:8]!r}); not scanned")


def _merge(out: Parsed, inner: Parsed, label: str) -> None:
    """Fold what was read from one archive member into the archive's result."""
    for issue in inner.issues:
        moved = replace(issue, member=f"{label}:{issue.member}" if issue.member else label)
        if moved not in out.issues:
            out.issues.append(moved)
    out.globals_used += [g for g in inner.globals_used if g not in out.globals_used]
    out.tensors += [
        replace(t, name=f"{label}:{t.name}", storage_key=f"{label}:{t.storage_key}") for t in inner.tensors
    ]
    out.inconclusive += [f"{label}: {r}" for r in inner.inconclusive]
    out.notes += [f"{label}: {n}" for n in inner.notes]
    out.layout_problems += inner.layout_problems
    out.pickles += inner.pickles
    out.inflated += inner.inflated


def _zip_layout(names: list[str]) -> str:
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names) or any(
        "/models/" in n and n.endswith(".json") for n in names
    ):
        return "torch-export"
    if any(n.endswith("constants.pkl") for n in names) and any(
        "/code/" in n or n.startswith("code/") for n in names
    ):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch-zip"
    if names and all(n.endswith(".npy") or n.endswith("/") for n in names):
        return "npz"
    return "zip"


def _export_weights(z: TolerantZip, out: Parsed) -> None:
    """Tensor metadata of a torch.export (.pt2) archive from its weights config JSON."""
    for m in z.members:
        if m.name.endswith("model_weights_config.json"):
            data = _read_member(z, m, out, MAX_JSON_BYTES)
            try:
                config = json.loads(data).get("config", {})
            except (ValueError, AttributeError):
                raise ReadError(f"{m.name}: invalid JSON") from None
            for name, entry in config.items():
                meta: dict[str, Any] = entry.get("tensor_meta", {}) if isinstance(entry, dict) else {}
                sizes: list[Any] = [s.get("as_int") for s in meta.get("sizes", []) if isinstance(s, dict)]
                if not all(isinstance(s, int) for s in sizes):
                    continue

                out.tensors.append(
                    TensorInfo(
                        str(name),
                        EXPORT_DTYPES.get(meta.get("dtype", -1), "unknown"),
                        tuple(sizes),
                        f"{m.name}:{entry.get('path_name', name)}",
                    )
                )


# --- numpy ---------------------------------------------------------------------------------


NPY_KEYS = {"descr", "fortran_order", "shape"}
NPY_MAX_HEADER = 10_000  # np.load(allow_pickle=False) refuses longer headers


def _read_npy(buf: Any, out: Parsed, name: str, label: str) -> None:
    """One .npy array, its header validated as numpy's reader does (format.read_array_header):
    a magic of version 1.0, 2.0 or 3.0, a dict literal with exactly the keys descr,
    fortran_order and shape, a bool order and a tuple shape of non-negative ints."""
    size = len(buf)
    if size < 10:
        raise ReadError(f"{label or 'npy'}: truncated numpy header")
    major, minor = buf[6], buf[7]
    if minor != 0:
        raise ReadError(f"{label or 'npy'}: unknown numpy format version {major}.{minor}")
    if major == 1:
        hlen, start = struct.unpack("<H", buf[8:10])[0], 10
    elif major in (2, 3):
        if size < 12:
            raise ReadError(f"{label or 'npy'}: truncated numpy header")
        hlen, start = struct.unpack("<I", buf[8:12])[0], 12
    else:
        raise ReadError(f"{label or 'npy'}: unknown numpy format version {major}")
    if start + hlen > size or hlen > NPY_MAX_HEADER:
        raise ReadError(f"{label or 'npy'}: numpy header claims {hlen:,} bytes, file has {size - start:,}")
    try:
        text = bytes(buf[start : start + hlen]).decode("utf8" if major == 3 else "latin1")
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise ReadError(f"{label or 'npy'}: unreadable numpy header") from None
    if not isinstance(header, dict) or set(header) != NPY_KEYS:
        raise ReadError(f"{label or 'npy'}: numpy header is not a dict of exactly {sorted(NPY_KEYS)}")
    descr, shape = header["descr"], header["shape"]
    if not isinstance(header["fortran_order"], bool):
        raise ReadError(f"{label or 'npy'}: numpy header's fortran_order is not a bool")
    if not isinstance(shape, tuple) or not all(type(s) is int and s >= 0 for s in shape):
        raise ReadError(f"{label or 'npy'}: invalid numpy shape {shape!r}")

    data_start = start + hlen
    if isinstance(descr, str) and "O" not in descr:
        dtype = ps.numpy_dtype_name(descr)
        if dtype not in DTYPE_BYTES or not re.fullmatch(r"[<>|=]?(b1|\?|[fiuc][0-9]{1,2})", descr):
            # strings, dates, records ...: numpy may read them, but not as tensors this scan sizes
            out.inconclusive.append(
                f"{label or name}: numpy dtype {descr!r} is not a tensor dtype mlaudit checks"
            )
            return
        need = _prod(shape) * DTYPE_BYTES[dtype]
        if data_start + need > size:
            raise ReadError(
                f"{label or 'npy'}: {need:,} bytes of array data expected, {size - data_start:,} present"
            )
        out.tensors.append(TensorInfo(name, dtype, shape, f"npy:{label or name}", 0, need))
        return
    # Object (or structured) arrays: numpy pickles the elements right after the header.
    stream = io.BytesIO(bytes(buf[data_start:])) if not hasattr(buf, "seek") else buf
    if hasattr(buf, "seek"):
        buf.seek(data_start)
    res = _scan(stream, f"{label or 'npy'} (object array)")
    out.absorb(res)
    out.notes.append(f"{label or name}: object array (pickled elements)")
    if out.format == "numpy":
        out.format = "numpy-object"


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# --- safetensors --------------------------------------------------------------------------


def _read_safetensors(buf: Any, size: int, out: Parsed, prefix: str) -> list:
    """Parse the header ourselves so that layout problems are findings, not crashes."""

    label = prefix or "safetensors"
    if size < 8:
        raise ReadError(f"{label}: truncated (no 8-byte header length)")
    (hlen,) = struct.unpack("<Q", buf[:8])
    if hlen > size - 8:
        raise ReadError(
            f"{label}: header claims {hlen:,} bytes but only {size - 8:,} follow the length field"
        )
    if hlen > MAX_SAFETENSORS_HEADER:
        raise ReadError(
            f"{label}: header of {hlen:,} bytes exceeds the {MAX_SAFETENSORS_HEADER:,} bytes mlaudit reads"
        )
    out.header_bytes = hlen if out.header_bytes is None else max(out.header_bytes, hlen)
    try:
        header = json.loads(bytes(buf[8 : 8 + hlen]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ReadError(f"{label}: header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ReadError(f"{label}: header is not a JSON object")
    data_len = size - 8 - hlen
    tensors = []
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if isinstance(entry, dict):
                out.metadata.update({str(k): v for k, v in entry.items()})
            continue
        where = f"{prefix}:{name}" if prefix else name
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise ReadError(f"{label}: tensor {name!r} lacks dtype/shape/data_offsets")
        dtype_code, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not (
            isinstance(shape, list)
            and all(isinstance(s, int) and s >= 0 for s in shape)
            and isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) for o in offs)
        ):
            raise ReadError(f"{label}: tensor {name!r} has a malformed shape or data_offsets")
        begin, end = offs
        known = SAFETENSORS_DTYPES.get(dtype_code)
        dtype = known[0] if known else str(dtype_code).lower()
        tensors.append(TensorInfo(name, dtype, tuple(shape), f"{prefix}:{name}", 0, max(0, end - begin)))
        if known is None:
            out.layout_problems.append(
                _problem(where, f"unknown dtype {dtype_code!r}", dtype=str(dtype_code))
            )
            continue
        if begin < 0 or end < begin or end > data_len:
            out.layout_problems.append(
                _problem(
                    where,
                    f"data_offsets [{begin}, {end}] outside the {data_len:,}-byte data section",
                    begin=begin,
                    end=end,
                    data_bytes=data_len,
                )
            )
            continue
        expected = _prod(tuple(shape)) * known[1]
        if end - begin != expected:
            out.layout_problems.append(
                _problem(
                    where,
                    f"{dtype_code} {shape} needs {expected:,} bytes but data_offsets span {end - begin:,}",
                    expected_bytes=expected,
                    actual_bytes=end - begin,
                )
            )
        spans.append((begin, end, where))
    spans.sort()
    for (b1, e1, n1), (b2, e2, n2) in zip(spans, spans[1:], strict=False):
        if b2 < e1:
            out.layout_problems.append(
                _problem(n2, f"bytes [{b2}, {e2}] overlap {n1} [{b1}, {e1}]", overlap_bytes=e1 - b2)
            )
    # the tensors must cover the data section exactly (safetensors itself refuses gaps and
    # trailing bytes): bytes no tensor explains are bytes the scan cannot account for
    reached, unexplained = 0, 0
    for begin, end, _ in spans:
        unexplained += max(0, begin - reached)
        reached = max(reached, end)
    unexplained += max(0, data_len - reached)
    if unexplained:
        out.inconclusive.append(
            f"{label}: {unexplained:,} bytes of the data section belong to no tensor "
            "(safetensors refuses such files)"
        )
    return tensors


def _problem(tensor: str, message: str, **evidence: Any) -> Any:

    return LayoutProblem(tensor, message, evidence)


def _read_index(buf: Any, path: Path) -> Parsed:
    """A sharded safetensors index: every listed shard's header is read and cross-checked."""
    import mmap as _mmap

    if len(buf) > MAX_JSON_BYTES:
        raise ReadError(f"index of {len(buf):,} bytes is larger than {MAX_JSON_BYTES:,}")
    try:
        index = json.loads(bytes(buf[:]).decode("utf-8"))
        weight_map = index["weight_map"]
        assert isinstance(weight_map, dict)
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AssertionError):
        raise ReadError("not a safetensors index (no weight_map object)") from None
    out = Parsed("safetensors-index")
    by_shard: dict[str, set[str]] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(str(shard), set()).add(str(tensor))
    for shard, names in sorted(by_shard.items()):
        if escapes_dir(path.parent, shard):
            out.layout_problems.append(_problem(shard, f"shard path {shard!r} leaves the model directory"))
            continue
        shard_path = path.parent / shard
        if not remote.exists(shard_path):
            raise ReadError(f"shard {shard!r} listed in the index is missing")
        size = remote.size_of(shard_path)
        if size == 0:
            raise ReadError(f"shard {shard!r} is empty")
        opened = remote.open_buffer(shard_path)  # a shard in a bucket: its header by ranges
        if opened is not None:
            view, obj = opened
            try:
                tensors = _read_safetensors(view, size, out, prefix=shard)
            finally:
                obj.bytes_read += view.bytes_read
                obj.requests += view.requests
                view.close()
        else:
            with open(shard_path, "rb") as fh, _mmap.mmap(fh.fileno(), 0, access=_mmap.ACCESS_READ) as sbuf:
                tensors = _read_safetensors(sbuf, size, out, prefix=shard)
        present = {t.name for t in tensors}
        for missing in sorted(names - present):
            out.layout_problems.append(
                _problem(
                    f"{shard}:{missing}", f"index maps {missing!r} to {shard!r}, which does not contain it"
                )
            )
        out.tensors.extend(t for t in tensors if t.name in names)
    out.metadata.update(
        {k: v for k, v in index.get("metadata", {}).items()}
        if isinstance(index.get("metadata"), dict)
        else {}
    )
    return out


# --- compressed pickles (joblib) ---------------------------------------------------------


def _inflate(buf: Any, kind: str) -> bytes:
    """Decompress a gzip/zlib stream in 1 MB steps, refusing more than MAX_PICKLE_BYTES out."""
    d = zlib.decompressobj(31 if kind == "gzip" else 15)
    out = bytearray()
    step = 1 << 20
    try:
        for pos in range(0, len(buf), step):
            out += d.decompress(bytes(buf[pos : pos + step]), MAX_PICKLE_BYTES + 1 - len(out))
            if len(out) > MAX_PICKLE_BYTES or d.unconsumed_tail:
                raise ReadError(f"{kind} stream inflates beyond {MAX_PICKLE_BYTES:,} bytes")
            if d.eof:
                break
    except zlib.error as err:
        raise ReadError(f"corrupt {kind} stream ({err})") from None
    if not out:
        raise ReadError(f"empty {kind} stream")
    return bytes(out)


# --- ONNX --------------------------------------------------------------------------------


def _read_onnx(buf: Any, path: Path) -> Parsed:
    """An ONNX model's initializers, Constant values (subgraphs included), external-data
    locations and metadata, from the protobuf wire format (`onnx_proto`; no `import onnx`)."""
    is_onnx_name = path.name.lower().endswith(".onnx")
    if len(buf) > 2**31:
        raise ReadError(f"{len(buf):,} bytes: larger than any ONNX protobuf can be (2 GB)")
    try:
        model = onnx_proto.parse_model(buf)
    except onnx_proto.ProtoError as err:
        if is_onnx_name:
            raise ReadError(f"invalid ONNX protobuf ({err})") from None
        raise ReadError("unrecognized checkpoint format") from None
    if model.graph is None or (not model.graph.nodes and not model.graph.initializers):
        if is_onnx_name:
            raise ReadError("ONNX protobuf without a graph")
        raise ReadError("unrecognized checkpoint format")
    out = Parsed("onnx")
    base_dir = str(path.parent)
    for name, t in onnx_proto.walk_tensors(model.graph):
        out.tensors.append(TensorInfo(name, t.dtype, tuple(t.dims), f"onnx:{name}"))
    for t in onnx_proto.all_values(model.graph):  # every value's bytes, as onnx's to_array reads them
        why = onnx_proto.unaccounted(model, t, base_dir)
        if why:
            out.inconclusive.append(why)
            break
    out.external_data.extend(onnx_proto.external_locations(model))
    out.metadata.update(model.metadata_props)
    return out
