"""A tolerant, bounded zip reader that sees the archive the way torch does.

torch's reader (miniz) trusts the central directory and ignores what Python's `zipfile`
rejects: CRC mismatches, and local-header names that differ from the central directory.
An attacker can use exactly those differences to hide a member from a scanner built on
`zipfile` that torch would still load, so this reader takes names and offsets from the
central directory, never checks CRCs, and only records the discrepancies.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

EOCD = b"PK\x05\x06"
EOCD64_LOCATOR = b"PK\x06\x07"
EOCD64 = b"PK\x06\x06"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
MAX_MEMBERS = 200_000
# General-purpose flag bits every reader handles: deflate options (bits 1-2), sizes in a data
# descriptor (bit 3), UTF-8 names (bit 11). Any other bit makes some reader refuse the member:
# encryption (0, 6), patched data (5), a masked local header (13), or bits no reader defines;
# Python's zipfile (numpy) reads them from the local header, torch's miniz from the central
# directory, so both places are checked.
KNOWN_FLAGS = 0x0002 | 0x0004 | 0x0008 | 0x0800
UTF8_NAMES = 0x0800
DOS_DIRECTORY = 0x10  # the external attributes' MS-DOS directory bit


class ZipError(Exception):
    """The archive cannot be read (one-line reason)."""


@dataclass(frozen=True)
class Member:
    """One central-directory entry."""

    name: str
    method: int
    compressed_size: int
    size: int
    header_offset: int
    crc: int
    local_name: str | None = None  # set when the local header names it differently

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


class TolerantZip:
    """Read-only view of a zip archive held in a bytes-like buffer (bytes or an mmap)."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.size = len(buf)
        self.members = self._read_central()
        self.notes: list[str] = []
        for m in self.members:
            if m.local_name is not None:
                self.notes.append(f"local header names {m.local_name!r} but the central directory {m.name!r}")

    def _find_eocd(self) -> int:
        start = max(0, self.size - (65535 + 22))
        pos = bytes(self.buf[start : self.size]).rfind(EOCD)
        if pos < 0:
            raise ZipError("not a complete zip archive (no end-of-central-directory record; truncated?)")
        return start + pos

    def _read_central(self) -> list[Member]:
        eocd = self._find_eocd()
        if eocd + 22 > self.size:
            raise ZipError("truncated end-of-central-directory record")
        (_, disk, cd_disk, on_disk, count, cd_size, cd_offset, _) = struct.unpack(
            "<4sHHHHIIH", self.buf[eocd : eocd + 22]
        )
        # What torch's reader (miniz) rejects is rejected here too: a file torch refuses is
        # never "clean" (checks below mirror mz_zip_reader_read_central_dir).
        loc = eocd - 20
        has_zip64 = loc >= 0 and bytes(self.buf[loc : loc + 4]) == EOCD64_LOCATOR
        if count == 0xFFFF or cd_offset == 0xFFFFFFFF or cd_size == 0xFFFFFFFF or has_zip64:
            if not has_zip64:
                raise ZipError("zip64 archive without a zip64 locator")
            (locator_disk, rec_off, disks) = struct.unpack("<IQI", self.buf[loc + 4 : loc + 20])
            if locator_disk != 0 or disks != 1:  # miniz: "unsupported multidisk archive"
                raise ZipError(f"zip64 locator names disk {locator_disk} of {disks}: a multi-disk archive")
            if rec_off + 56 > self.size or bytes(self.buf[rec_off : rec_off + 4]) != EOCD64:
                raise ZipError("zip64 end-of-central-directory record out of range")
            short = (count, cd_size, cd_offset)
            disk, cd_disk, on_disk, count, cd_size, cd_offset = struct.unpack(
                "<IIQQQQ", self.buf[rec_off + 16 : rec_off + 56]
            )
            # where the classic record is not the zip64 escape value, both must agree (readers
            # differ on which one they trust)
            escapes = (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
            for small, big, escape in zip(short, (count, cd_size, cd_offset), escapes, strict=True):
                if small != escape and small != big:
                    raise ZipError("the end record and the zip64 end record disagree")
        if disk != 0 or cd_disk != 0 or on_disk != count:
            raise ZipError("multi-disk or inconsistent end-of-central-directory record")
        if cd_size < count * 46:
            raise ZipError(f"central directory of {cd_size:,} bytes cannot hold {count:,} entries")
        if cd_offset + cd_size != (rec_off if has_zip64 else eocd):
            raise ZipError("the central directory does not end where the end record begins")
        if count > MAX_MEMBERS:
            raise ZipError(f"central directory claims {count:,} members (limit {MAX_MEMBERS:,})")
        if cd_offset + cd_size > self.size:
            raise ZipError(
                f"central directory at {cd_offset:,}+{cd_size:,} lies beyond the {self.size:,}-byte file"
            )
        if hasattr(self.buf, "prefetch"):  # a remote object read by ranges (mlaudit.inputs.ranged)
            self._prefetch_members(cd_offset, cd_size)
        members: list[Member] = []
        pos = cd_offset
        for _ in range(count):
            if pos + 46 > self.size or bytes(self.buf[pos : pos + 4]) != CENTRAL:
                raise ZipError("corrupt central directory entry")
            (flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, start_disk) = struct.unpack(
                "<HHHHIIIHHHH", self.buf[pos + 8 : pos + 36]
            )
            (external, offset) = struct.unpack("<II", self.buf[pos + 38 : pos + 46])
            if pos + 46 + nlen + xlen + clen > cd_offset + cd_size:
                raise ZipError("central directory entry runs past the directory")
            try:  # torch reads record names as UTF-8 and fails on anything else
                name = bytes(self.buf[pos + 46 : pos + 46 + nlen]).decode("utf-8")
            except UnicodeDecodeError:
                raise ZipError("a member name is not valid UTF-8") from None
            extra = bytes(self.buf[pos + 46 + nlen : pos + 46 + nlen + xlen])
            usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
            if start_disk not in (0, 0xFFFF) or (start_disk == 0xFFFF and not has_zip64):
                raise ZipError(f"member {name!r} is on another disk (multi-disk archive)")
            if flags & 1:
                raise ZipError(f"member {name!r} is encrypted")
            if flags & ~KNOWN_FLAGS:
                raise ZipError(
                    f"member {name!r}: central directory flag bits {flags:#06x} that loaders refuse"
                )
            if offset + 30 + csize > self.size:
                raise ZipError(f"member {name!r} runs past the end of the archive (truncated?)")
            if method not in (0, 8):
                raise ZipError(f"member {name!r} uses compression method {method} (torch reads only 0 and 8)")
            if external & DOS_DIRECTORY and usize and not name.endswith("/"):
                # miniz (torch) takes the DOS directory attribute for a directory and reads no
                # bytes; Python's zipfile reads the member: two loaders, two contents
                raise ZipError(f"member {name!r} holds {usize:,} bytes but is marked as a directory")
            if method == 0 and csize != usize:
                raise ZipError(f"stored member {name!r}: {csize:,} bytes stored but {usize:,} declared")
            local_name = self._local_name(offset, name, flags)
            members.append(Member(name, method, csize, usize, offset, crc, local_name))
            self._check_extent(members[-1])
            pos += 46 + nlen + xlen + clen
        if pos != cd_offset + cd_size:
            raise ZipError("the central directory holds more entries than the end record counts")
        return members

    def _prefetch_members(self, cd_offset: int, cd_size: int) -> None:
        """Ask a ranged view for every member's local header (and the first bytes after it,
        where the readers peek), and for the whole of each pickle member, in one batch:
        one round trip instead of one per member. Only a hint: nothing is validated here,
        the loop in _read_central checks every entry as for a local file."""
        cd = bytes(self.buf[cd_offset : cd_offset + cd_size])
        ranges: list[tuple[int, int]] = []
        pos = 0
        while pos + 46 <= len(cd) and cd[pos : pos + 4] == CENTRAL and len(ranges) < MAX_MEMBERS:
            csize, usize = struct.unpack("<II", cd[pos + 20 : pos + 28])
            nlen, xlen, clen = struct.unpack("<HHH", cd[pos + 28 : pos + 34])
            (offset,) = struct.unpack("<I", cd[pos + 42 : pos + 46])
            name = cd[pos + 46 : pos + 46 + nlen]
            extra = cd[pos + 46 + nlen : pos + 46 + nlen + xlen]
            usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
            span = 30 + nlen + 128  # local header, its extra field (torch pads to 64), a peek
            if name.lower().endswith(b".pkl") or csize <= 4096:
                span += csize
            ranges.append((offset, offset + span))
            pos += 46 + nlen + xlen + clen
        self.buf.prefetch(ranges)

    def _local_name(self, offset: int, name: str, central_flags: int) -> str | None:
        """The local header's name where a loader would see it differ from `name`, else None."""
        if offset + 30 > self.size or bytes(self.buf[offset : offset + 4]) != LOCAL:
            raise ZipError(f"member {name!r}: local header missing at offset {offset:,}")
        (flags,) = struct.unpack("<H", self.buf[offset + 6 : offset + 8])
        if flags & ~KNOWN_FLAGS:
            raise ZipError(f"member {name!r}: local header flag bits {flags:#06x} that loaders refuse")
        nlen, xlen = struct.unpack("<HH", self.buf[offset + 26 : offset + 30])
        raw = bytes(self.buf[offset + 30 : offset + 30 + nlen])
        local = raw.decode("utf-8", errors="replace")
        if local != name:
            return local
        # Python's zipfile decodes each header's name as cp437 unless its UTF-8 flag is set:
        # a non-ASCII name whose flags differ reads as two names there (zipfile refuses it)
        # and as another name than torch's UTF-8 reading when neither sets the flag
        if not raw.isascii() and not (flags & central_flags & UTF8_NAMES):
            return raw.decode("cp437")
        return None

    def _check_extent(self, m: Member) -> None:
        """The member's data, placed by its local header, must lie inside the file (miniz
        refuses to extract it otherwise)."""
        if self.data_offset(m) + m.compressed_size > self.size:
            raise ZipError(f"member {m.name!r} runs past the end of the archive (local header sizes)")

    def data_offset(self, m: Member) -> int:
        nlen, xlen = struct.unpack("<HH", self.buf[m.header_offset + 26 : m.header_offset + 30])
        return m.header_offset + 30 + nlen + xlen

    def read(self, m: Member, limit: int) -> bytes:
        """The member's uncompressed bytes, refusing more than `limit` (CRC not checked)."""
        if m.size > limit:
            raise ZipError(f"member {m.name!r} is {m.size:,} bytes (limit {limit:,})")
        start = self.data_offset(m)
        if start + m.compressed_size > self.size:
            raise ZipError(f"member {m.name!r} runs past the end of the archive (truncated?)")
        raw = self.buf[start : start + m.compressed_size]
        if m.method == 0:
            return bytes(raw)
        if m.method == 8:
            d = zlib.decompressobj(-15)
            try:
                out = d.decompress(bytes(raw), limit + 1)
            except zlib.error as err:
                raise ZipError(f"member {m.name!r}: corrupt deflate data ({err})") from None
            if len(out) > limit:
                raise ZipError(f"member {m.name!r} inflates beyond {limit:,} bytes")
            if len(out) != m.size:  # miniz (torch) refuses a member of another size than declared
                raise ZipError(f"member {m.name!r} inflates to {len(out):,} bytes, {m.size:,} declared")
            return out
        raise ZipError(f"member {m.name!r} uses unsupported compression method {m.method}")

    def crc_ok(self, m: Member, data: bytes) -> bool:
        return (zlib.crc32(data) & 0xFFFFFFFF) == m.crc


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[pos : pos + 4])
        if tag == 0x0001:
            body = extra[pos + 4 : pos + 4 + size]
            vals = [struct.unpack("<Q", body[i : i + 8])[0] for i in range(0, len(body) - 7, 8)]
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if offset == 0xFFFFFFFF:
                offset = next(it, offset)
        pos += 4 + size
    return usize, csize, offset
