"""Release bundles: tar, tar.gz/tgz (and zip, through readers._read_zip) opened without extracting.

Every regular member is handed to `scan_member` (the same reading a file gets when named
directly), bounded in depth, member count and expanded size; links, devices and the like are
noted, never followed. torch's own pre-0.4 tar checkpoint (members `sys_info`, `pickle`,
`storages`, `tensors`) is recognised and refused as before: it is the format behind
CVE-2025-32434.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from typing import Any

from mlaudit.inputs.checkpoint.types import Parsed, ReadError

MAX_MEMBERS = 10_000
TORCH_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})

ScanMember = Callable[[bytes, Parsed, str, int], None]


def is_tar(head: bytes) -> bool:
    """POSIX/GNU tar: the `ustar` magic at offset 257 of the first header."""
    return len(head) >= 262 and head[257:262] == b"ustar"


def read_tar(
    data: Any,
    out: Parsed,
    where: str,
    depth: int,
    scan_member: ScanMember,
    member_limit: int,
    total_limit: int,
) -> None:
    """Scan each regular member of a tar held in `data` (bytes or an mmap)."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:")
        members = []
        for info in tar:
            members.append(info)
            if len(members) > MAX_MEMBERS:
                raise ReadError(f"{where or 'tar'}: more than {MAX_MEMBERS:,} members")
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise ReadError(f"{where or 'tar'}: not a readable tar archive ({err})") from None
    names = {m.name.rsplit("/", 1)[-1] for m in members}
    if TORCH_TAR_MEMBERS <= names:
        raise ReadError(
            "legacy tar checkpoint (torch < 0.4) is not scanned; it is the format behind CVE-2025-32434"
        )
    if not members:
        out.inconclusive.append(f"{where or 'tar'}: empty archive")
    for info in members:
        label = f"{where}/{info.name}" if where else info.name
        if info.isdir():
            continue
        if not info.isfile():
            out.notes.append(f"{label}: {_kind(info)} in the archive, not followed")
            continue
        if info.size > member_limit:
            out.inconclusive.append(
                f"{label}: {info.size:,} bytes, more than the {member_limit:,} mlaudit reads"
            )
            continue
        if out.inflated + info.size > total_limit:
            raise ReadError(f"archive expands beyond {total_limit:,} bytes in total")
        fh = tar.extractfile(info)
        body = fh.read() if fh is not None else b""
        out.inflated += len(body)
        scan_member(body, out, label, depth)


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symlink to {info.linkname!r}"
    if info.islnk():
        return f"hard link to {info.linkname!r}"
    return "special file"
