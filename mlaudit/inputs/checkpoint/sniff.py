"""Format detection by structure, not by the first bytes alone, and never by the extension alone.

A safetensors file is recognised by what the format is (an 8-byte little-endian length that
fits the file, then that many bytes of a JSON object) before any pickle guess: a benign
safetensors header of 640 bytes starts 0x80 0x02, exactly like a protocol-2 pickle. Where bytes
could still be read two ways (a file that is both a valid safetensors file and a pickle that
parses), the reader scans it both ways and the stricter reading decides (see readers.read_any).
"""

from __future__ import annotations

import json
from typing import Any

from mlaudit.inputs import InputError

# First bytes of protocol 0/1 pickles (no PROTO opcode): MARK, GLOBAL, EMPTY_LIST/DICT/TUPLE, NONE.
_PROTO01_STARTS = frozenset(b"(c]}).")
MAX_SAFETENSORS_HEADER = 256 * 1024 * 1024  # beyond this the header is not even read
# Magic numbers of data files that hold no model code or weights a loader would unpickle:
# inside an archive they are explained (images, documents, audio, columnar data).
DATA_MAGICS = {
    b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF8": "gif", b"%PDF-": "pdf",
    b"RIFF": "riff", b"fLaC": "flac", b"OggS": "ogg", b"ID3": "mp3", b"PAR1": "parquet",
}  # fmt: skip


def looks_like_pickle(head: bytes) -> bool:
    """A PROTO opcode for protocol 2..5 (what torch and joblib write)."""
    return head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5


def safetensors_header(buf: Any, size: int) -> dict | None:
    """The parsed JSON header when `buf` is structurally a safetensors file, else None:
    length field within the file and the bytes it spans a JSON object."""
    if size < 10:
        return None
    hlen = int.from_bytes(bytes(buf[:8]), "little")
    if hlen < 2 or hlen > size - 8 or hlen > MAX_SAFETENSORS_HEADER:
        return None
    if bytes(buf[8:9]) != b"{":
        return None
    try:
        header = json.loads(bytes(buf[8 : 8 + hlen]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def sniff(head: bytes, name: str, size: int, buf: Any = None) -> str:
    """One of: lfs-pointer, zip, numpy, safetensors, pickle, pickle0, safetensors-index,
    onnx?, zlib, gzip, tar. `buf` (the whole file) lets safetensors be validated by structure;
    without it only the header's shape is checked. Raises InputError for unknown content."""
    if not head:
        raise InputError(name, "empty file (0 bytes)")
    if head.startswith(b"version https://git-lfs"):
        return "lfs-pointer"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if buf is not None:
        if safetensors_header(buf, size) is not None:
            return "safetensors"
    elif len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if looks_like_pickle(head):
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"  # a safetensors-shaped header that does not validate: its reader says why
    if name.endswith(".index.json") and head.lstrip()[:1] == b"{":
        return "safetensors-index"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:1] == b"\x78" and len(head) > 1 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
        return "zlib"
    if head[:1] == b"\x08" or name.lower().endswith(".onnx"):
        return "onnx?"
    if head[:1] in (b"\x80",) or head[0] in _PROTO01_STARTS:
        return "pickle0"
    raise InputError(name, f"unrecognized checkpoint format (starts with {head[:8]!r})")


def data_kind(head: bytes) -> str | None:
    """'text' or the data format (png, pdf ...) of bytes that hold no model, else None."""
    for magic, kind in DATA_MAGICS.items():
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not just a character cut at the end of the sample
            return None
    return "text"
