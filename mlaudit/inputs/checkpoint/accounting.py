"""Storage accounting: a torch file is "clean" only when the bytes its loader uses are explained.

torch rebuilds every tensor from a storage record the pickle names by persistent id
(`('storage', type, key, location, numel)`). The static listing can only stand for what the
loader will read when, in both directions, every referenced record exists and holds enough
bytes, every record is referenced, every tensor stays inside its storage, and every referenced
storage belongs to a tensor the listing names. Each failure is one line for MLA002.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlaudit.inputs.checkpoint import pickle_scan as ps


def storage_refs(pids: Iterable[ps.PersId]) -> dict[str, tuple[str, int, str]]:
    """{key: (storage dtype, numel, storage class)} of every storage persistent id."""
    refs: dict[str, tuple[str, int, str]] = {}
    for pid in pids:
        info = ps._storage_info(pid)
        if info is not None:
            key, dtype, numel = info
            refs[key] = (dtype, numel, pid.pid[1].name)
    return refs


def persistent_id_problems(pids: Iterable[ps.PersId], legacy: bool) -> list[str]:
    """Storage persistent ids torch cannot unpack. The zip format's loader unpacks exactly
    ('storage', type, key, location, numel); the legacy one adds view metadata, None or
    (view key, offset, size). Any other shape makes torch.load fail, so the file is not what
    the static listing says."""
    problems = []
    for pid in pids:
        t = pid.pid
        if not (isinstance(t, tuple) and t and t[0] == "storage"):
            continue  # reported as an oddity by the pickle scan
        want = 6 if legacy else 5
        if len(t) != want:
            problems.append(f"a storage reference with {len(t)} fields where torch unpacks {want}")
        elif not isinstance(t[3], str) or not isinstance(t[4], int) or isinstance(t[4], bool) or t[4] < 0:
            problems.append(
                f"storage reference {_describe_pid(t)}: location or element count torch cannot use"
            )
        elif legacy and t[5] is not None and not (
            isinstance(t[5], tuple) and len(t[5]) == 3 and all(type(v) is int for v in t[5][1:])
        ):
            problems.append(f"storage reference {_describe_pid(t)}: view metadata torch cannot unpack")
        if len(problems) >= 3:
            break
    return problems


def _describe_pid(t: tuple) -> str:
    return repr(t[2]) if len(t) > 2 and isinstance(t[2], str | int) else "(unnamed)"


def storage_bytes(dtype: str, numel: int) -> int:
    """Bytes a storage of `numel` elements of `dtype` occupies."""
    return numel * ps.DTYPE_SIZES.get(dtype, 1)


def _few(keys: Iterable[str]) -> str:
    keys = sorted(keys, key=lambda k: (len(k), k))
    shown = ", ".join(keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def check_storages(
    refs: Mapping[str, tuple[str, int, str]],
    records: Mapping[str, int],
    named: list[ps.StaticTensor] | None,
    where: str,
    rebuilds: Sequence[ps.Call] = (),
) -> list[str]:
    """Problems between the storages a pickle references (`refs`), the records the file holds
    ({key: bytes}) and the tensors the listing names (`named`; None when this pickle's
    tensors are not listed, e.g. TorchScript constants). Empty when everything is explained."""
    at = f"{where}: " if where else ""
    problems = []
    missing = set(refs) - set(records)
    if missing:
        problems.append(f"{at}the pickle references storage record(s) {_few(missing)} that the file lacks")
    unused = set(records) - set(refs)
    if unused:
        size = sum(records[k] for k in unused)
        problems.append(
            f"{at}storage record(s) {_few(unused)} ({size:,} bytes) are referenced by no tensor: "
            "bytes the scan cannot account for"
        )
    # torch checks each record's size against the declared element count exactly
    wrong = [k for k in refs if k in records and records[k] != storage_bytes(refs[k][0], refs[k][1])]
    if wrong:
        problems.append(f"{at}storage record(s) {_few(wrong)} differ in size from what the pickle declares")
    if named is None:
        return problems
    unnamed = set(refs) - {k for t in named for k in (t.storage_keys or {t.storage_key})}
    if unnamed:
        problems.append(
            f"{at}{len(unnamed)} storage(s) ({_few(unnamed)}) belong to tensors the scan cannot name: "
            "the tensor listing would be incomplete"
        )
    outside = [
        t.name
        for t in named
        if t.storage_key in refs
        and t.span_bytes > storage_bytes(refs[t.storage_key][0], refs[t.storage_key][1])
    ]
    if outside:
        problems.append(f"{at}tensor(s) {_few(outside)} reach past the end of their storage")
    covered = {c for t in named for c in t.calls}
    unlisted = [c for c in rebuilds if id(c) not in covered]
    if unlisted:
        problems.append(
            f"{at}{len(unlisted)} tensor rebuild call(s) the listing does not name (tensors in a set or "
            "an object, or arguments torch cannot use): the tensor counts disagree"
        )
    return problems


def legacy_records(
    buf: Any, start: int, size: int, keys: Any, refs: Mapping[str, tuple[str, int, str]]
) -> tuple[dict[str, int], list[str]]:
    """Walk the raw storages after a legacy file's storage-keys pickle: for each key in order,
    an int64 element count then the elements. Returns ({key: bytes}, problems)."""
    problems: list[str] = []
    if not isinstance(keys, ps.SList) or not all(isinstance(k, str) for k in keys.items):
        return {}, ["the storage-keys pickle is not a list of keys"]
    records: dict[str, int] = {}
    pos = start
    for key in keys.items:
        if key not in refs:
            records[key] = 0  # reported as unreferenced; its size cannot be known
            problems.append(
                f"storage key {key} is listed but no tensor references it (torch refuses such files)"
            )
            break
        dtype, numel, cls = refs[key]
        if cls == "UntypedStorage":
            problems.append(
                f"storage {key} is untyped: torch cannot load untyped storages from the legacy format"
            )
        if pos + 8 > size:
            problems.append(f"storage record {key} is cut off (file ends at {size:,} bytes)")
            break
        (count,) = struct.unpack("<q", bytes(buf[pos : pos + 8]))
        if count != numel:
            problems.append(
                f"storage record {key} holds {count:,} elements where the pickle declares {numel:,}"
            )
            break
        nbytes = storage_bytes(dtype, numel)
        if pos + 8 + nbytes > size:
            problems.append(f"storage record {key} needs {nbytes:,} bytes past the end of the file")
            break
        records[key] = nbytes
        pos += 8 + nbytes
    return records, problems
