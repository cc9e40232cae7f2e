"""Format detection by content: magic bytes and header shapes, never the file extension alone."""

from __future__ import annotations

from mlaudit.inputs import InputError

# First bytes of protocol 0/1 pickles (no PROTO opcode): MARK, GLOBAL, EMPTY_LIST/DICT/TUPLE, NONE.
_PROTO01_STARTS = frozenset(b"(c]}).")


def sniff(head: bytes, name: str, size: int) -> str:
    """One of: lfs-pointer, zip, numpy, pickle, pickle0, safetensors, safetensors-index,
    onnx?, zlib, gzip, tar. Raises InputError when the content matches no known format."""
    if not head:
        raise InputError(name, "empty file (0 bytes)")
    if head.startswith(b"version https://git-lfs"):
        return "lfs-pointer"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
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
